// The proxy in front of @modelcontextprotocol/server-filesystem rooted in a temporary
// directory: what the policy denies must leave the disk untouched, what it allows must read
// and change the real files.
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync } from 'node:fs';
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import type { Client } from '@modelcontextprotocol/sdk/client/index.js';
import { fixturePolicy } from '../support/paths.js';
import { makeTempDir, type TempDir } from '../support/temp.js';
import { assertDenied, assertNotDenied, textOf } from '../support/messages.js';
import { servers } from '../support/servers.js';
import { connectV1, directParams, proxyParams, type Session } from '../support/sdk-clients.js';

describe('server-filesystem behind a read-mostly policy', { timeout: 60_000 }, () => {
  let dir: TempDir;
  let proxy: Session<Client>;
  const notes = 'first line\nsecond line\n';

  before(async () => {
    dir = await makeTempDir('intercept-e2e-fs-');
    await writeFile(dir.file('notes.txt'), notes);
    await mkdir(dir.file('drafts'));
    proxy = await connectV1(proxyParams(fixturePolicy('filesystem.yaml'), servers.filesystem(dir.path)));
  });
  after(async () => {
    await proxy?.close();
    await dir?.cleanup();
  });
  const call = (name: string, args: Record<string, unknown>) => proxy.client.callTool({ name, arguments: args });

  it('reads a file: the real content comes back', async () => {
    const result = await call('read_text_file', { path: dir.file('notes.txt') });
    assertNotDenied(result);
    assert.equal(textOf(result), notes);
    assert.equal(textOf(await call('read_text_file', { path: dir.file('notes.txt'), head: 1 })), 'first line');
  });

  it('denies write_file, and no file appears on disk', async () => {
    const target = dir.file('new.txt');
    assertDenied(await call('write_file', { path: target, content: 'should never be written' }), {
      kind: 'deny_rule',
      rule: 'read-only workspace',
      message: 'Writing files is not allowed here; propose the change instead',
    });
    assert.equal(existsSync(target), false);
  });

  it('denies write_file over an existing file, which keeps its content', async () => {
    assertDenied(await call('write_file', { path: dir.file('notes.txt'), content: 'overwritten' }), { kind: 'deny_rule' });
    assert.equal(await readFile(dir.file('notes.txt'), 'utf8'), notes);
  });

  it('hides edit_file from the list and refuses it, leaving the file as it was', async () => {
    const direct = await connectV1(directParams(servers.filesystem(dir.path)));
    try {
      const unfiltered = (await direct.client.listTools()).tools.map((t) => t.name);
      const filtered = (await proxy.client.listTools()).tools.map((t) => t.name);
      assert.ok(unfiltered.includes('edit_file'), unfiltered.join(','));
      assert.deepEqual(filtered, unfiltered.filter((name) => name !== 'edit_file'));
    } finally {
      await direct.close();
    }
    assertDenied(await call('edit_file', { path: dir.file('notes.txt'), edits: [{ oldText: 'first', newText: 'edited' }] }), {
      kind: 'hidden',
      message: 'Tool "edit_file" is hidden by policy',
    });
    assert.equal(await readFile(dir.file('notes.txt'), 'utf8'), notes);
  });

  it('denies read_text_file without its required path, naming it', async () => {
    for (const args of [{}, { head: 1 }]) {
      const denial = assertDenied(await call('read_text_file', args), {
        kind: 'missing_args',
        rule: 'path given',
        message: 'Missing required argument "path" for tool "read_text_file"',
      });
      assert.deepEqual(denial.detail.missing, ['path']);
    }
  });

  it('creates directories only where the condition allows', async () => {
    const allowed = dir.file('drafts/ideas');
    const result = await call('create_directory', { path: allowed });
    assertNotDenied(result);
    assert.match(textOf(result), /Successfully created directory/);
    assert.equal(existsSync(allowed), true);

    const refused = dir.file('secrets');
    assertDenied(await call('create_directory', { path: refused }), {
      kind: 'condition',
      rule: 'drafts only',
      message: 'Directories may only be created under drafts/',
    });
    assert.equal(existsSync(refused), false);
  });
});
