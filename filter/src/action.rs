//! The actions toolgate authorizes: one row each, with its Cedar id and what it implies.

/// What a call does, as policy names it (`Action::"tools/call"`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Action {
    ToolsCall,
    PromptsGet,
    ResourcesRead,
    Initialize,
    Ping,
    Notification,
    /// A client's response to a server-initiated request (sampling, elicitation).
    Response,
    /// A body-less GET on the MCP endpoint: the server's stream.
    Stream,
    /// A body-less DELETE on the MCP endpoint: the session's end.
    Terminate,
    /// 2026-07-28: what the server supports, in place of `initialize`.
    ServerDiscover,
    /// 2026-07-28: the long-lived POST stream of change notifications.
    SubscriptionsListen,
    LoggingSetLevel,
    /// Names the resource (`context.name`) but acts on the server: it asks to be told
    /// of changes, and each `resources/read` after that is authorized on its own.
    ResourcesSubscribe,
    ResourcesUnsubscribe,
    CompletionComplete,
    TasksGet,
    TasksResult,
    TasksList,
    TasksCancel,
    /// The tasks extension (2026-07-28): input for a task that asked for it.
    TasksUpdate,
    ToolsList,
    PromptsList,
    ResourcesList,
    ResourceTemplatesList,
    /// Any JSON-RPC method the protocol's table does not name; `context.rpc_method` does.
    Rpc,
    /// A plain REST call.
    Http,
    /// A2A (`docs/a2a.md`): a message to the remote agent, answered at once or streamed.
    A2aSendMessage,
    A2aSendStreamingMessage,
    /// A2A task methods: the task is bound to the agent whose message created it.
    A2aGetTask,
    A2aCancelTask,
    A2aSubscribeToTask,
    A2aCreateTaskPushNotificationConfig,
    A2aGetTaskPushNotificationConfig,
    A2aListTaskPushNotificationConfigs,
    A2aDeleteTaskPushNotificationConfig,
    /// Every task the remote agent keeps: not filtered to the caller's, so in no group.
    A2aListTasks,
    /// The agent card at its well-known path, and the authenticated extended card.
    A2aGetAgentCard,
    A2aGetExtendedAgentCard,
    /// Never a request's own action: asked of policy when a task call names a task
    /// the caller does not own (see `a2a_tasks`).
    A2aSharedTask,
}

/// Where an action sits in the Cedar model: its action group.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Level {
    /// Acts on a named tool, prompt, resource or route.
    Call,
    /// Any other method on the server, in no group.
    Server,
    /// In `Action::"session"`: what every MCP session needs.
    Session,
    /// In `Action::"discovery"`: listing what the server offers.
    Discovery,
    /// In `Action::"tasks"`: a task's state and result. Not in the shipped permits:
    /// toolgate does not bind MCP task ids to the agent that started them.
    Tasks,
    /// In `Action::"a2a_messages"`: messages to a remote agent.
    A2aMessages,
    /// In `Action::"a2a_tasks"`: one task, checked against its owner first.
    A2aTasks,
    /// In `Action::"a2a_discovery"`: the agent's cards.
    A2aDiscovery,
}

struct Row {
    id: &'static str,
    level: Level,
    /// Recorded in session history and counted by rates: it does something.
    recorded: bool,
    /// An approval-gated resource needs a bound human approval for it.
    approval: bool,
}

impl Action {
    /// Every action, in table order.
    pub const ALL: &'static [Action] = &[
        Self::ToolsCall,
        Self::PromptsGet,
        Self::ResourcesRead,
        Self::Initialize,
        Self::Ping,
        Self::Notification,
        Self::Response,
        Self::Stream,
        Self::Terminate,
        Self::ServerDiscover,
        Self::SubscriptionsListen,
        Self::LoggingSetLevel,
        Self::ResourcesSubscribe,
        Self::ResourcesUnsubscribe,
        Self::CompletionComplete,
        Self::TasksGet,
        Self::TasksResult,
        Self::TasksList,
        Self::TasksCancel,
        Self::TasksUpdate,
        Self::ToolsList,
        Self::PromptsList,
        Self::ResourcesList,
        Self::ResourceTemplatesList,
        Self::Rpc,
        Self::Http,
        Self::A2aSendMessage,
        Self::A2aSendStreamingMessage,
        Self::A2aGetTask,
        Self::A2aCancelTask,
        Self::A2aSubscribeToTask,
        Self::A2aCreateTaskPushNotificationConfig,
        Self::A2aGetTaskPushNotificationConfig,
        Self::A2aListTaskPushNotificationConfigs,
        Self::A2aDeleteTaskPushNotificationConfig,
        Self::A2aListTasks,
        Self::A2aGetAgentCard,
        Self::A2aGetExtendedAgentCard,
        Self::A2aSharedTask,
    ];

    fn row(self) -> Row {
        let row = |id, level, recorded, approval| Row {
            id,
            level,
            recorded,
            approval,
        };
        use Level::*;
        match self {
            Self::ToolsCall => row("tools/call", Call, true, true),
            Self::PromptsGet => row("prompts/get", Call, true, false),
            Self::ResourcesRead => row("resources/read", Call, true, false),
            Self::Http => row("http", Call, true, false),
            Self::Initialize => row("initialize", Session, false, false),
            Self::Ping => row("ping", Session, false, false),
            Self::Notification => row("notification", Session, false, false),
            Self::Response => row("response", Session, false, false),
            Self::Stream => row("stream", Session, false, false),
            Self::Terminate => row("terminate", Session, false, false),
            Self::ServerDiscover => row("server/discover", Session, false, false),
            Self::SubscriptionsListen => row("subscriptions/listen", Session, false, false),
            Self::LoggingSetLevel => row("logging/setLevel", Session, false, false),
            Self::ResourcesSubscribe => row("resources/subscribe", Session, false, false),
            Self::ResourcesUnsubscribe => row("resources/unsubscribe", Session, false, false),
            Self::CompletionComplete => row("completion/complete", Discovery, false, false),
            Self::TasksGet => row("tasks/get", Tasks, false, false),
            Self::TasksResult => row("tasks/result", Tasks, false, false),
            Self::TasksList => row("tasks/list", Tasks, false, false),
            Self::TasksCancel => row("tasks/cancel", Tasks, false, false),
            Self::TasksUpdate => row("tasks/update", Tasks, false, false),
            Self::ToolsList => row("tools/list", Discovery, false, false),
            Self::PromptsList => row("prompts/list", Discovery, false, false),
            Self::ResourcesList => row("resources/list", Discovery, false, false),
            Self::ResourceTemplatesList => row("resources/templates/list", Discovery, false, false),
            Self::Rpc => row("rpc", Server, false, false),
            Self::A2aSendMessage => row("a2a/SendMessage", A2aMessages, true, false),
            Self::A2aSendStreamingMessage => {
                row("a2a/SendStreamingMessage", A2aMessages, true, false)
            }
            Self::A2aGetTask => row("a2a/GetTask", A2aTasks, false, false),
            Self::A2aCancelTask => row("a2a/CancelTask", A2aTasks, true, false),
            Self::A2aSubscribeToTask => row("a2a/SubscribeToTask", A2aTasks, false, false),
            Self::A2aCreateTaskPushNotificationConfig => row(
                "a2a/CreateTaskPushNotificationConfig",
                A2aTasks,
                true,
                false,
            ),
            Self::A2aGetTaskPushNotificationConfig => {
                row("a2a/GetTaskPushNotificationConfig", A2aTasks, false, false)
            }
            Self::A2aListTaskPushNotificationConfigs => row(
                "a2a/ListTaskPushNotificationConfigs",
                A2aTasks,
                false,
                false,
            ),
            Self::A2aDeleteTaskPushNotificationConfig => row(
                "a2a/DeleteTaskPushNotificationConfig",
                A2aTasks,
                true,
                false,
            ),
            Self::A2aListTasks => row("a2a/ListTasks", Server, false, false),
            Self::A2aGetAgentCard => row("a2a/GetAgentCard", A2aDiscovery, false, false),
            Self::A2aGetExtendedAgentCard => {
                row("a2a/GetExtendedAgentCard", A2aDiscovery, false, false)
            }
            Self::A2aSharedTask => row("a2a/SharedTask", Server, false, false),
        }
    }

    /// The Cedar action id.
    pub fn id(self) -> &'static str {
        self.row().id
    }

    pub fn level(self) -> Level {
        self.row().level
    }

    /// True when the call does something: session history records it and rates count it.
    pub fn is_recorded(self) -> bool {
        self.row().recorded
    }

    /// True when an approval-gated resource needs a human approval for this action.
    pub fn needs_approval(self) -> bool {
        self.row().approval
    }

    /// The action with this Cedar id.
    pub fn from_id(id: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|a| a.id() == id)
    }
}
