import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ToolCatalogue, type PageFetcher } from '../../src/proxy/catalogue.js';

const tool = (name: string, inputSchema: Record<string, unknown> = { type: 'object' }) => ({ name, inputSchema });

/** A server with its tools spread over pages, counting how often it is asked. */
function pagedServer(pages: unknown[][]): { fetch: PageFetcher; calls: (string | undefined)[] } {
  const calls: (string | undefined)[] = [];
  const fetch: PageFetcher = async (cursor) => {
    calls.push(cursor);
    const index = cursor === undefined ? 0 : Number(cursor);
    const next = index + 1 < pages.length ? String(index + 1) : undefined;
    return { tools: pages[index] ?? [], nextCursor: next };
  };
  return { fetch, calls };
}

describe('ToolCatalogue', () => {
  it('reads a tool seen in a tools/list result without asking the server', async () => {
    const c = new ToolCatalogue();
    c.record([tool('send', { type: 'object', required: ['to', 'body', 7] })]);
    const info = await c.schemaFor('send', async () => assert.fail('must not list'), false);
    assert.deepEqual(info?.required, ['to', 'body']);
  });

  it('lists every page when the tool is not known yet, then stops asking', async () => {
    const server = pagedServer([[tool('a')], [tool('b')], [tool('c', { type: 'object', required: ['x'] })]]);
    const c = new ToolCatalogue();
    assert.deepEqual((await c.schemaFor('c', server.fetch, false))?.required, ['x']);
    assert.deepEqual(server.calls, [undefined, '1', '2']);
    assert.equal(await c.schemaFor('missing', server.fetch, false), null);
    assert.equal(server.calls.length, 3, 'a complete listing is not repeated');
  });

  it('shares one listing between concurrent lookups', async () => {
    const server = pagedServer([[tool('a'), tool('b')]]);
    const c = new ToolCatalogue();
    const [a, b] = await Promise.all([c.schemaFor('a', server.fetch, false), c.schemaFor('b', server.fetch, false)]);
    assert.ok(a && b);
    assert.equal(server.calls.length, 1);
  });

  it('lists again when a list_changed notification discards the listing in progress', async () => {
    const c = new ToolCatalogue();
    let calls = 0;
    const fetch: PageFetcher = async () => {
      calls++;
      if (calls === 1) c.invalidate(); // the server announces a change while we list
      return { tools: [tool('late', { type: 'object', required: ['q'] })] };
    };
    assert.deepEqual((await c.schemaFor('late', fetch, false))?.required, ['q']);
    assert.equal(calls, 2);
  });

  it('gives null when the server cannot be asked', async () => {
    const c = new ToolCatalogue();
    assert.equal(await c.schemaFor('x', async () => Promise.reject(new Error('down')), false), null);
  });

  it('forgets everything on invalidate', async () => {
    const c = new ToolCatalogue();
    c.record([tool('gone')]);
    c.invalidate();
    assert.equal(await c.schemaFor('gone', pagedServer([[]]).fetch, false), null);
  });

  it('validates against draft-07 and 2020-12 schemas, and refuses when a schema does not compile', async () => {
    const c = new ToolCatalogue();
    c.record([
      tool('d7', { $schema: 'http://json-schema.org/draft-07/schema#', type: 'object', properties: { n: { type: 'number' } }, required: ['n'] }),
      tool('d2020', { $schema: 'https://json-schema.org/draft/2020-12/schema', type: 'object', properties: { s: { type: 'string', minLength: 2 } } }),
      tool('broken', { type: 'object', properties: { x: { type: 'no-such-type' } } }),
    ]);
    const none: PageFetcher = async () => ({ tools: [] });
    const d7 = await c.schemaFor('d7', none, true);
    assert.deepEqual(d7?.validate?.({ n: 1 }), []);
    assert.ok((d7?.validate?.({ n: 'one' }) ?? []).some((e) => e.includes('/n')));
    const d2020 = await c.schemaFor('d2020', none, true);
    assert.deepEqual(d2020?.validate?.({ s: 'ok' }), []);
    assert.equal(d2020?.validate?.({ s: 'x' }).length, 1);
    const broken = await c.schemaFor('broken', none, true);
    assert.match(broken?.validate?.({}).join() ?? '', /could not be compiled/);
  });
});
