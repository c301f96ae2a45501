// A minimal MCP server over stdio for the benchmarks: newline-delimited JSON-RPC, no SDK, so
// that what is measured is the path between client and server, not the server.
//   node bench/echo-server.mjs [tool ...]
// It offers the named tools (or one, `echo`), each taking any arguments; tools/call answers
// with the call's arguments as text. Plain JavaScript: no transpiler in the measured process.
import { createInterface } from 'node:readline';

const names = process.argv.length > 2 ? process.argv.slice(2) : ['echo'];
const tools = names.map((name) => ({
  name,
  description: `Echoes its arguments (${name})`,
  inputSchema: { type: 'object', properties: { repo: { type: 'string' }, title: { type: 'string' } }, required: [] },
}));

const out = [];
let flushing = false;
// One write per burst of answers, as a busy server would do; the answers leave in order.
function send(message) {
  out.push(JSON.stringify(message));
  if (flushing) return;
  flushing = true;
  setImmediate(() => {
    flushing = false;
    const text = out.join('\n') + '\n';
    out.length = 0;
    process.stdout.write(text);
  });
}

function answer(msg) {
  switch (msg.method) {
    case 'initialize':
      return {
        protocolVersion: msg.params?.protocolVersion ?? '2025-06-18',
        capabilities: { tools: { listChanged: false } },
        serverInfo: { name: 'bench-echo', version: '1.0.0' },
      };
    case 'ping':
      return {};
    case 'tools/list':
      return { tools };
    case 'tools/call':
      return { content: [{ type: 'text', text: JSON.stringify(msg.params?.arguments ?? {}) }] };
    default:
      return undefined;
  }
}

const lines = createInterface({ input: process.stdin, crlfDelay: Infinity });
lines.on('line', (line) => {
  if (line.trim() === '') return;
  let msg;
  try {
    msg = JSON.parse(line);
  } catch {
    return;
  }
  if (msg.id === undefined || typeof msg.method !== 'string') return; // notifications, responses
  const result = answer(msg);
  if (result === undefined) send({ jsonrpc: '2.0', id: msg.id, error: { code: -32601, message: `Method not found: ${msg.method}` } });
  else send({ jsonrpc: '2.0', id: msg.id, result });
});
lines.on('close', () => process.exit(0));
