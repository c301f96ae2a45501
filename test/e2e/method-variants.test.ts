// A method that differs from `tools/call` or `tools/list` only in case, spacing, invisible
// characters, slashes or Unicode form used to pass the gate untouched, and a server with
// lenient dispatch then ran a denied tool or listed hidden ones. Now any method that folds onto
// one the proxy acts on without being spelt exactly so is refused, from either side, on every
// transport. The server here is that lenient server: the first test shows it really does run
// the variants, so every later "never reached it" is a real check.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { makeTempDir, writePolicy, type TempDir } from '../support/temp.js';
import { errorOf, initializeBody, isRecord, MODERN, modernBody, resultText, type Json } from '../support/messages.js';
import { startProxy, type RawProxy } from '../support/raw-proxy.js';
import { openSse, postRaw, request, startListener, type Listener } from '../support/listener.js';
import { dispatched, lenientServer } from '../support/lenient.js';

const TIMEOUT = { timeout: 120_000 };

const POLICY = `version: "1"
default: allow
hide:
  - secret_tool
tools:
  delete_file:
    rules:
      - name: never delete
        action: deny
        on_deny: "Deleting files is not allowed"
`;

const CALL_VARIANTS = [
  'Tools/Call',
  'TOOLS/CALL',
  'tools/Call',
  'tools/call ',
  ' tools/call',
  'tools/call\t',
  'tools/call\n',
  'tools/call\u0000',
  'tools\uFF0Fcall', // fullwidth solidus
  '\uFF54\uFF4F\uFF4F\uFF4C\uFF53/\uFF43\uFF41\uFF4C\uFF4C', // fullwidth letters
  'tools/\u200Bcall', // zero-width space
  '\uFEFFtools/call', // byte order mark
  'tools/call\u00AD', // soft hyphen
  'tool\u017F/call', // long s, NFKC-folds to "s"
  'tools/call/',
  '/tools/call',
];
const LIST_VARIANTS = ['Tools/List', 'tools/list ', 'TOOLS\uFF0FLIST', 'tools/\u200Dlist', '/Tools/List/'];
const VARIANTS = [...CALL_VARIANTS, ...LIST_VARIANTS];

/** A request with `method`, calling the denied tool (for call variants). */
function variantRequest(id: number, method: string): Json {
  return { jsonrpc: '2.0', id, method, params: { name: 'delete_file', arguments: { path: '/important' } } };
}

let dir: TempDir;
let policy: string;
before(async () => {
  dir = await makeTempDir();
  policy = await writePolicy(dir.path, POLICY);
});
after(async () => {
  await dir?.cleanup();
});

/** No variant reached the server, nor did the denied tool run. */
async function assertNoVariantArrived(logFile: string): Promise<void> {
  const seen = await dispatched(logFile);
  assert.deepEqual(
    seen.filter((m) => m.raw !== undefined && VARIANTS.includes(m.raw)),
    [],
    'a method variant reached the server',
  );
  assert.deepEqual(seen.filter((m) => m.method === 'tools/call' && m.name === 'delete_file'), [], 'the denied tool ran');
}

function assertAmbiguous(answer: Json | undefined, method: string): void {
  const error = errorOf(answer);
  assert.equal(error?.code, -32600, `${JSON.stringify(method)}: ${JSON.stringify(answer)}`);
  assert.match(error!.message, /is ambiguous \(it differs from "tools\/(call|list)" only in case, spacing or Unicode form\)/);
}

describe('the lenient server, without the proxy', TIMEOUT, () => {
  it('runs every variant as the real method (so the tests below can fail)', async () => {
    const server = lenientServer(join(dir.path, 'direct.log'));
    const child = spawn(server.command, server.args, { stdio: ['pipe', 'pipe', 'inherit'] });
    const lines: Json[] = [];
    let partial = '';
    child.stdout.setEncoding('utf8').on('data', (s: string) => {
      const parts = (partial + s).split('\n');
      partial = parts.pop()!;
      for (const p of parts) lines.push(JSON.parse(p) as Json);
    });
    VARIANTS.forEach((method, i) => child.stdin.write(JSON.stringify(variantRequest(i, method)) + '\n'));
    const deadline = Date.now() + 20_000;
    while (lines.length < VARIANTS.length && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    child.kill();
    VARIANTS.forEach((method, i) => {
      const answer = lines.find((l) => l.id === i);
      if (CALL_VARIANTS.includes(method)) assert.equal(resultText(answer), 'ran delete_file', JSON.stringify(method));
      else assert.ok(JSON.stringify(answer).includes('secret_tool'), JSON.stringify(method));
    });
  });
});

describe('method variants over stdio', TIMEOUT, () => {
  let proxy: RawProxy;
  let logFile: string;
  before(async () => {
    logFile = join(dir.path, 'stdio.log');
    const server = lenientServer(logFile);
    proxy = startProxy(['-c', policy, '--', server.command, ...server.args]);
    await proxy.initialize();
  });
  after(async () => {
    await proxy?.close();
  });

  for (const method of VARIANTS) {
    it(`refuses ${JSON.stringify(method)} as a request and as a notification`, async () => {
      const id = proxy.freshId();
      proxy.sendJson(variantRequest(id, method));
      assertAmbiguous(await proxy.response(id), method);
      proxy.sendJson({ jsonrpc: '2.0', method, params: { name: 'delete_file', arguments: {} } });
      await proxy.barrier();
    });
  }

  it('let none of them reach the server; the exact methods are still gated and filtered', async () => {
    await assertNoVariantArrived(logFile);
    const listed = await proxy.request('tools/list', {});
    const names = ((listed.result as { tools: Array<{ name: string }> }).tools ?? []).map((t) => t.name);
    assert.ok(names.includes('echo') && !names.includes('secret_tool'), names.join(','));
    assert.match(resultText(await proxy.callTool('delete_file', { path: '/x' })) ?? '', /Deleting files is not allowed/);
  });

  it('drops a server notification that imitates one the proxy acts on, and answers such a server request', async () => {
    proxy.drain();
    assert.equal(resultText(await proxy.callTool('emit', { method: 'Notifications/Tools/List_Changed' })), 'sent Notifications/Tools/List_Changed');
    await proxy.barrier();
    assert.deepEqual(proxy.drain().filter((m) => isRecord(m) && typeof m.method === 'string'), [], 'the imitation reached the client');

    // The exact spelling passes: the check above is not vacuous.
    assert.equal(resultText(await proxy.callTool('emit', { method: 'notifications/tools/list_changed' })), 'sent notifications/tools/list_changed');
    await proxy.barrier();
    assert.ok(proxy.drain().some((m) => isRecord(m) && m.method === 'notifications/tools/list_changed'));

    const asked = await proxy.callTool('emit', { method: 'Tools/List', request: true });
    assert.match(resultText(asked) ?? '', /client answered with error -32600: .*ambiguous/);
  });
});

describe('method variants on the Streamable HTTP listener', TIMEOUT, () => {
  let listener: Listener;
  let logFile: string;
  before(async () => {
    logFile = join(dir.path, 'http.log');
    listener = await startListener(policy, lenientServer(logFile));
  });
  after(async () => {
    await listener?.stop();
  });

  it('refuses every variant in a 2025 session', async () => {
    const init = await request(listener.url, { body: initializeBody() });
    const session = { 'Mcp-Session-Id': init.headers.get('mcp-session-id')! };
    await postRaw(listener.url, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }), session);
    let id = 10;
    for (const method of VARIANTS) {
      const res = await postRaw(listener.url, JSON.stringify(variantRequest(id, method)), session);
      assertAmbiguous(await res.next((m) => m.id === id), method);
      id++;
      await postRaw(listener.url, JSON.stringify({ jsonrpc: '2.0', method, params: {} }), session);
    }
    const ping = await postRaw(listener.url, JSON.stringify({ jsonrpc: '2.0', id: 1, method: 'ping' }), session);
    assert.ok((await ping.next((m) => m.id === 1))?.result);
    await assertNoVariantArrived(logFile);
  });

  it('refuses every variant from a 2026-07-28 client', async () => {
    let id = 100;
    for (const method of VARIANTS) {
      const body = modernBody(id, method, { name: 'delete_file', arguments: { path: '/important' } });
      // A header carries printable ASCII without outer spaces: other variants cannot be named
      // there exactly, and the listener refuses that mismatch (HeaderMismatch) before the gate.
      const exact = /^[\x21-\x7e](?:[\x20-\x7e]*[\x21-\x7e])?$/.test(method);
      const headers: Record<string, string> = { 'MCP-Protocol-Version': MODERN, 'Mcp-Method': exact ? method : 'tools/call' };
      const res = await postRaw(listener.url, JSON.stringify(body), headers);
      const answer = await res.next();
      if (exact) assertAmbiguous(answer, method);
      else assert.equal(errorOf(answer)?.code, -32020, `${JSON.stringify(method)} is refused`);
      id++;
    }
    await assertNoVariantArrived(logFile);
  });
});

describe('method variants on the legacy SSE listener', TIMEOUT, () => {
  it('refuses every variant', async () => {
    const logFile = join(dir.path, 'sse.log');
    const listener = await startListener(policy, lenientServer(logFile), { transport: 'sse' });
    const sse = await openSse(listener.url);
    try {
      await postRaw(sse.postUrl, initializeBody(1));
      assert.ok(await sse.stream.next((m) => m.id === 1));
      await postRaw(sse.postUrl, JSON.stringify({ jsonrpc: '2.0', method: 'notifications/initialized' }));
      let id = 10;
      for (const method of VARIANTS) {
        await postRaw(sse.postUrl, JSON.stringify(variantRequest(id, method)));
        assertAmbiguous(await sse.stream.next((m) => m.id === id), method);
        id++;
      }
      await assertNoVariantArrived(logFile);
    } finally {
      sse.close();
      await listener.stop();
    }
  });
});
