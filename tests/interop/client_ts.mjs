// Interop driver for the TypeScript SDK (@modelcontextprotocol/sdk): connects over mTLS (undici), runs the steps, prints a JSON report of what the SDK surfaced.
//
//   node tests/interop/client_ts.mjs --url https://localhost:8443/mcp --certs .work/certs --cert reader \
//     --steps '[{"op": "list"}, {"op": "call", "tool": "echo", "args": {"text": "hi"}}]'
//
// The packages come from TOOLGATE_NODE_MODULES (scripts/lib/common.sh: .work/node/node_modules),
// where `ensure_interop` installs them from tests/interop/package-lock.json.
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parseArgs } from 'node:util';
import { pathToFileURL } from 'node:url';

const modules = process.env.TOOLGATE_NODE_MODULES;
if (!modules) {
  console.error('TOOLGATE_NODE_MODULES is not set; run `source scripts/lib/common.sh; ensure_interop` and export it');
  process.exit(2);
}
const load = (path) => import(pathToFileURL(join(modules, path)).href);
const { Client } = await load('@modelcontextprotocol/sdk/dist/esm/client/index.js');
const { StreamableHTTPClientTransport } = await load('@modelcontextprotocol/sdk/dist/esm/client/streamableHttp.js');
const { CreateMessageRequestSchema, ElicitRequestSchema } = await load('@modelcontextprotocol/sdk/dist/esm/types.js');
const undici = (await load('undici/index.js')).default;
const sdkVersion = JSON.parse(readFileSync(join(modules, '@modelcontextprotocol/sdk/package.json'), 'utf8')).version;

const { values: args } = parseArgs({
  options: {
    url: { type: 'string' }, certs: { type: 'string' }, cert: { type: 'string', default: 'reader' },
    mode: { type: 'string', default: 'legacy' }, steps: { type: 'string' },
  },
});
const steps = JSON.parse(args.steps);

const TEXT_INLINE = 400;
const summarizeText = (text) => text.length <= TEXT_INLINE ? text
  : { length: text.length, sha256: createHash('sha256').update(text).digest('hex'), head: text.slice(0, 80) };

function resultReport(result) {
  if (result.tools) return { tools: result.tools.map((t) => t.name) };
  const data = structuredClone(result);
  for (const block of data.content ?? []) if (typeof block.text === 'string') block.text = summarizeText(block.text);
  if (typeof data.structuredContent?.result === 'string') data.structuredContent.result = summarizeText(data.structuredContent.result);
  return data;
}

function errorReport(error) {
  // McpError carries the JSON-RPC code and data; StreamableHTTPError carries the HTTP status as `code`.
  return { class: error?.constructor?.name ?? typeof error, text: String(error?.message ?? error).slice(0, 2000),
           code: error?.code, message: error?.message, data: error?.data };
}

const report = { sdk: 'typescript @modelcontextprotocol/sdk', version: sdkVersion, mode: 'legacy', protocol_version: null,
                 server_info: null, session_id: null, steps: [], server_requests: [], fatal: null, closed: false,
                 http: [], transport_errors: [] };

// mTLS: undici's fetch with the agent's certificate; every exchange is logged.
const dispatcher = new undici.Agent({
  connect: {
    ca: readFileSync(join(args.certs, 'ca.crt')),
    cert: readFileSync(join(args.certs, `${args.cert}.crt`)),
    key: readFileSync(join(args.certs, `${args.cert}.key`)),
  },
  // The SDK's own request timeout (60 s by default) bounds a call; undici's 300 s body timeout would cut a quiet stream.
  bodyTimeout: 0, headersTimeout: 0,
});
async function fetchWithCert(url, init = {}) {
  const response = await undici.fetch(url, { ...init, dispatcher });
  const sent = new Headers(init.headers ?? {});
  report.http.push({
    method: init.method ?? 'GET', status: response.status, content_type: response.headers.get('content-type'),
    sent_session: sent.get('mcp-session-id'), sent_protocol_version: sent.get('mcp-protocol-version'),
    sent_mcp_method: sent.get('mcp-method'), sent_mcp_name: sent.get('mcp-name'),
    got_session: response.headers.get('mcp-session-id'), decision_id: response.headers.get('x-toolgate-decision-id'),
  });
  return response;
}

const transport = new StreamableHTTPClientTransport(new URL(args.url), { fetch: fetchWithCert });
transport.onerror = (error) => report.transport_errors.push(errorReport(error));
const client = new Client({ name: 'toolgate-interop', version: '1.0.0' },
                          { capabilities: { sampling: {}, elicitation: { form: {} } } });
client.setRequestHandler(ElicitRequestSchema, async (request) => {
  report.server_requests.push({ method: 'elicitation/create', message: request.params.message });
  return { action: 'accept', content: { name: 'interop-agent' } };
});
client.setRequestHandler(CreateMessageRequestSchema, async () => {
  report.server_requests.push({ method: 'sampling/createMessage' });
  return { role: 'assistant', model: 'interop', content: { type: 'text', text: 'sampled' } };
});

try {
  await client.connect(transport);
  report.protocol_version = transport.protocolVersion ?? null;
  report.server_info = client.getServerVersion() ?? null;
  report.session_id = transport.sessionId ?? null;
  for (const step of steps) {
    const progress = [];
    const started = Date.now();
    try {
      const result = step.op === 'list' ? await client.listTools()
        : await client.callTool({ name: step.tool, arguments: step.args ?? {} }, undefined, {
            onprogress: (p) => progress.push({ progress: p.progress, total: p.total ?? null, message: p.message ?? null }),
            // A long call keeps its request alive while progress arrives (the SDK's 60 s default otherwise).
            resetTimeoutOnProgress: true,
          });
      report.steps.push({ ...step, ok: true, result: resultReport(result), progress, seconds: (Date.now() - started) / 1000 });
    } catch (error) {
      report.steps.push({ ...step, ok: false, error: errorReport(error), progress, seconds: (Date.now() - started) / 1000 });
    }
  }
  // A TypeScript client ends its session explicitly (DELETE), then closes.
  await transport.terminateSession();
  await client.close();
  report.closed = true;
} catch (error) {
  report.fatal = errorReport(error);
} finally {
  await dispatcher.close();
}
process.stdout.write(JSON.stringify(report, null, 1) + '\n');
