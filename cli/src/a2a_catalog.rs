//! The catalog entities of a remote A2A agent, from its agent card: the agent as a `Server`, each skill a `Skill` in it.

use serde_json::{json, Value};
use toolgate::mcp::acceptable_name;

/// The tag every generated agent carries, so policies can tell A2A agents apart.
pub const A2A_TAG: &str = "a2a";

/// Cedar entity JSON for the agent card `card` (its text read from `file`), as server
/// `server` with `tags` besides [`A2A_TAG`]: `Toolgate::Server::"<server>"` and a
/// `Toolgate::Skill::"<server>/<skill id>"` per skill, with its name and tags.
pub fn entities(
    server: &str,
    file: &str,
    card: &Value,
    tags: &[String],
) -> Result<Vec<Value>, String> {
    if !acceptable_name(server) || server.contains('/') {
        return Err(format!(
            "{file}: server name {server:?} must be 1 to 128 of A-Z a-z 0-9 _ - . (name it with --server)"
        ));
    }
    let Some(card) = card.as_object() else {
        return Err(format!("{file}: an agent card is a JSON object"));
    };
    let mut server_tags = vec![A2A_TAG.to_owned()];
    for tag in tags {
        if !server_tags.contains(tag) {
            server_tags.push(tag.clone());
        }
    }
    let server_uid = json!({ "type": "Toolgate::Server", "id": server });
    let mut out = vec![json!({
        "uid": server_uid,
        "attrs": { "tags": server_tags },
        "parents": [],
    })];
    let skills = match card.get("skills") {
        None | Some(Value::Null) => return Ok(out),
        Some(Value::Array(skills)) => skills,
        Some(_) => return Err(format!("{file}: `skills` must be an array")),
    };
    let mut seen = Vec::new();
    for (n, skill) in skills.iter().enumerate() {
        let at = format!("{file}: skills[{n}]");
        let id = skill
            .get("id")
            .and_then(Value::as_str)
            .ok_or_else(|| format!("{at}: a skill needs an `id` string"))?;
        if !acceptable_name(id) {
            return Err(format!(
                "{at}: skill id {id:?} has characters toolgate does not accept in an entity id (1 to 128 of A-Z a-z 0-9 _ - . /)"
            ));
        }
        if seen.contains(&id) {
            return Err(format!("{at}: skill id {id:?} is listed twice"));
        }
        seen.push(id);
        let mut attrs = serde_json::Map::new();
        if let Some(name) = skill.get("name").and_then(Value::as_str) {
            attrs.insert("name".into(), json!(name));
        }
        match skill.get("tags") {
            None | Some(Value::Null) => {}
            Some(Value::Array(tags)) => {
                let tags: Option<Vec<&str>> = tags.iter().map(Value::as_str).collect();
                let tags = tags.ok_or_else(|| format!("{at}: `tags` must be strings"))?;
                attrs.insert("tags".into(), json!(tags));
            }
            Some(_) => return Err(format!("{at}: `tags` must be an array of strings")),
        }
        out.push(json!({
            "uid": { "type": "Toolgate::Skill", "id": format!("{server}/{id}") },
            "attrs": attrs,
            "parents": [server_uid],
        }));
    }
    Ok(out)
}
