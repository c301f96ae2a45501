// The floor for one extra HTTP hop, the HTTP analogue of relay.ts: a Node `http` server that
// hands each POST body to the server over stdio, as one line, and answers with the line the
// server writes back. Nothing is parsed: a body that contains `"id":` is a request and waits
// for an answer; anything else is a notification (202, no body). Answers are matched to
// requests by their order, which holds for the bench echo server (it answers every request, in
// order, and sends nothing else). No sessions, no SSE, no validation: what an HTTP proxy costs
// above this is its own work.
//   http-floor <port> <command> [args...]
import { spawn } from 'node:child_process';
import { createServer, type ServerResponse } from 'node:http';

const [portText, command, ...args] = process.argv.slice(2);
if (portText === undefined || command === undefined) {
  process.stderr.write('usage: http-floor <port> <command> [args...]\n');
  process.exit(2);
}
const child = spawn(command, args, { stdio: ['pipe', 'pipe', 'inherit'] });
child.stdin.on('error', () => {});
child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)));

/** Requests sent to the server and not yet answered, oldest first. */
const waiting: ServerResponse[] = [];
const NEWLINE = Buffer.from('\n');
let buffered = '';
child.stdout.setEncoding('utf8');
child.stdout.on('data', (chunk: string) => {
  const text = buffered + chunk;
  let start = 0;
  let nl: number;
  while ((nl = text.indexOf('\n', start)) !== -1) {
    const line = text.slice(start, nl);
    start = nl + 1;
    if (line.length === 0) continue;
    const res = waiting.shift();
    if (res === undefined) continue; // nothing asked for it
    res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(line) });
    res.end(line);
  }
  buffered = text.slice(start);
});

const server = createServer((req, res) => {
  if (req.method !== 'POST') {
    res.writeHead(405, { allow: 'POST' }).end();
    return;
  }
  const chunks: Buffer[] = [];
  req.on('data', (chunk: Buffer) => chunks.push(chunk));
  req.on('end', () => {
    chunks.push(NEWLINE);
    const line = Buffer.concat(chunks);
    if (line.includes('"id":')) waiting.push(res);
    else res.writeHead(202).end();
    child.stdin.write(line);
  });
});
server.listen(Number(portText), '127.0.0.1');
process.on('SIGTERM', () => {
  server.close();
  server.closeAllConnections();
  child.stdin.end();
});
