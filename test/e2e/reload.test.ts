// Hot reload as a user sees it: edit the policy file under a running proxy and the next call
// follows the new policy; counters survive; a broken edit is reported and ignored. The watcher
// debounces, so every effect is polled for with a bounded loop. Needs the build (dist/).
import { afterEach, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { rename, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { makeTempDir } from '../support/temp.js';
import { eventually } from '../support/wait.js';
import { errorCode, isDenial, isRecord, type Json } from '../support/messages.js';
import { everythingCommand } from '../support/servers.js';
import { startProxy, type RawProxy } from '../support/raw-proxy.js';

const ALLOW_ECHO = `version: "1"
default: allow
tools:
  get-tiny-image:
    rules:
      - name: no images
        action: deny
`;

const DENY_ECHO = `version: "1"
default: allow
tools:
  get-tiny-image:
    rules:
      - name: no images
        action: deny
  echo:
    rules:
      - name: no echo
        action: deny
        on_deny: "Echo is switched off"
`;

const cleanups: Array<() => Promise<unknown>> = [];
afterEach(async () => {
  while (cleanups.length > 0) await cleanups.pop()!();
});

/** A proxy in front of the everything server, watching a policy file in its own directory. */
async function running(policyText: string, flags: string[] = []): Promise<{ proxy: RawProxy; file: string; dir: string }> {
  const tmp = await makeTempDir();
  const file = join(tmp.path, 'policy.yaml');
  await writeFile(file, policyText);
  const proxy = startProxy(['-c', file, ...flags, '--', ...everythingCommand()]);
  cleanups.push(tmp.cleanup);
  cleanups.push(async () => {
    if (proxy.running) await proxy.close();
  });
  await proxy.initialize();
  await proxy.barrier();
  proxy.drain();
  return { proxy, file, dir: tmp.path };
}

/** Saves the way editors that write a temporary file and rename it over the original do. */
async function saveByRename(file: string, text: string): Promise<void> {
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, text);
  await rename(temp, file);
}

/** Calls `tool` until `pred` holds for the answer (bounded), and returns that answer. */
function callUntil(proxy: RawProxy, tool: string, args: Json, pred: (answer: Json) => boolean): Promise<Json> {
  return eventually(async () => {
    const answer = await proxy.callTool(tool, args);
    return pred(answer) ? answer : undefined;
  });
}

const echoed = (answer: Json) => isRecord(answer.result) && !isDenial(answer) && JSON.stringify(answer.result).includes('Echo:');

describe('hot reload', { timeout: 60_000 }, () => {
  it('an edit written in place applies to the next call', async () => {
    const { proxy, file } = await running(ALLOW_ECHO);
    assert.ok(echoed(await proxy.callTool('echo', { message: 'before' })));

    await writeFile(file, DENY_ECHO);
    const denied = await callUntil(proxy, 'echo', { message: 'after' }, isDenial);
    assert.match(JSON.stringify(denied), /Echo is switched off/);
    await proxy.waitForStderr(/policy reloaded/);

    // And back again.
    await writeFile(file, ALLOW_ECHO);
    await callUntil(proxy, 'echo', { message: 'again' }, echoed);
  });

  it('an edit saved by write-temp-then-rename applies to the next call', async () => {
    const { proxy, file } = await running(ALLOW_ECHO);
    assert.ok(echoed(await proxy.callTool('echo', { message: 'before' })));

    await saveByRename(file, DENY_ECHO);
    await callUntil(proxy, 'echo', { message: 'after' }, isDenial);

    // The watch survives the rename: a second save is seen too.
    await saveByRename(file, ALLOW_ECHO);
    await callUntil(proxy, 'echo', { message: 'again' }, echoed);
  });

  it('keeps counters across a reload that changes an unrelated rule', async () => {
    const limited = (extra: string) => `version: "1"
default: allow
tools:
  echo:
    rules:
      - name: three echoes
        rate_limit:
          max: 3
          window: 3600
${extra}`;
    const { proxy, file } = await running(limited(''));
    assert.ok(echoed(await proxy.callTool('echo', { message: '1' })));
    assert.ok(echoed(await proxy.callTool('echo', { message: '2' })));

    await writeFile(
      file,
      limited(`  get-sum:
    rules:
      - name: no sums
        action: deny
`),
    );
    await callUntil(proxy, 'get-sum', { a: 1, b: 2 }, isDenial);

    // Two echoes were counted before the reload: one more is allowed, then the limit holds.
    assert.ok(echoed(await proxy.callTool('echo', { message: '3' })));
    const fourth = await proxy.callTool('echo', { message: '4' });
    assert.ok(isDenial(fourth), JSON.stringify(fourth));
    assert.match(JSON.stringify(fourth), /rate limit/i);
  });

  it('an invalid edit is reported with line numbers and the last good policy stays; a later valid edit applies', async () => {
    const { proxy, file } = await running(DENY_ECHO);
    assert.ok(isDenial(await proxy.callTool('echo', { message: 'x' })));

    // Would allow echo if any of it were applied.
    const broken = `version: "1"
default: allow
tools:
  echo:
    rules:
      - name: maybe echo
        conditions:
          - path: args.message
            op: resembles
            value: x
`;
    await writeFile(file, broken);
    await proxy.waitForStderr(/policy reload rejected/);
    const located = await proxy.waitForStderr(new RegExp(`${escape(file)}:9:\\d+: [^\\n]*unknown operator "resembles"`));
    assert.ok(located);
    assert.ok(proxy.running);

    const still = await proxy.callTool('echo', { message: 'x' });
    assert.ok(isDenial(still), `the last good policy should still deny echo: ${JSON.stringify(still)}`);
    assert.match(JSON.stringify(still), /Echo is switched off/);

    await writeFile(file, ALLOW_ECHO);
    await callUntil(proxy, 'echo', { message: 'fixed' }, echoed);
  });

  it('a file removed and written again is picked up', async () => {
    const { proxy, file, dir } = await running(ALLOW_ECHO);
    await rm(file);
    // Calls keep working on the policy in force while the file is gone.
    assert.ok(echoed(await proxy.callTool('echo', { message: 'no file' })));
    await writeFile(join(dir, 'policy.yaml'), DENY_ECHO);
    await callUntil(proxy, 'echo', { message: 'back' }, isDenial);
  });

  it('--no-watch ignores edits that a watching proxy on the same file picks up', async () => {
    const { proxy: watching, file } = await running(ALLOW_ECHO);
    const fixed = startProxy(['-c', file, '--no-watch', '--', ...everythingCommand()]);
    cleanups.push(async () => {
      if (fixed.running) await fixed.close();
    });
    await fixed.initialize();

    await writeFile(file, DENY_ECHO);
    await callUntil(watching, 'echo', { message: 'x' }, isDenial);
    const answer = await fixed.callTool('echo', { message: 'x' });
    assert.ok(echoed(answer), `an edit applied despite --no-watch: ${JSON.stringify(answer)}`);
    assert.doesNotMatch(fixed.stderr, /policy reloaded/);
  });
});

describe('hide changes and tools/list_changed', { timeout: 60_000 }, () => {
  const hiding = (hidden: string[], extra = '') => `version: "1"
default: allow
hide: [${hidden.map((h) => JSON.stringify(h)).join(', ')}]
tools:
  get-tiny-image:
    rules:
      - name: no images
        action: deny
${extra}`;

  const isListChanged = (m: unknown) => isRecord(m) && m.method === 'notifications/tools/list_changed';

  async function toolNames(proxy: RawProxy): Promise<string[]> {
    const list = await proxy.request('tools/list', {});
    assert.equal(errorCode(list), undefined, JSON.stringify(list));
    const tools = isRecord(list.result) && Array.isArray(list.result.tools) ? list.result.tools : [];
    return tools.map((t: Json) => String(t.name));
  }

  it('changing hide tells the client (whose server declared tools.listChanged) and re-filters tools/list', async () => {
    const { proxy, file } = await running(hiding([]));
    assert.ok((await toolNames(proxy)).includes('get-sum'));

    await writeFile(file, hiding(['get-sum']));
    await proxy.waitFor(isListChanged, undefined, 'notifications/tools/list_changed');
    assert.ok(!(await toolNames(proxy)).includes('get-sum'));
    const call = await proxy.callTool('get-sum', { a: 1, b: 2 });
    assert.ok(isDenial(call));
    assert.match(JSON.stringify(call), /hidden by policy/);

    await writeFile(file, hiding([]));
    await proxy.waitFor(isListChanged, undefined, 'notifications/tools/list_changed after un-hiding');
    assert.ok((await toolNames(proxy)).includes('get-sum'));
  });

  it('a reload that leaves hide alone sends no tools/list_changed', async () => {
    const { proxy, file } = await running(hiding(['get-env']));
    await writeFile(
      file,
      hiding(
        ['get-env'],
        `  get-sum:
    rules:
      - name: no sums
        action: deny
`,
      ),
    );
    await callUntil(proxy, 'get-sum', { a: 1, b: 2 }, isDenial);
    await proxy.barrier();
    assert.deepEqual(proxy.pending().filter(isListChanged), []);
  });
});

function escape(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
