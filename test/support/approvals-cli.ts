// `intercept approvals …` as its own process on a proxy's store, as a second terminal would run
// it, and the views the approval tests read from it and from the upstream's tee log.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { INTERCEPT_BIN, ROOT } from './paths.js';
import { eventually } from './wait.js';
import { isRecord, type Json } from './messages.js';
import { readTeeLog } from './servers.js';

const run = promisify(execFile);

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ApprovalsCli {
  /** `intercept approvals <args> -c <policy> <store flags>`. */
  run(...args: string[]): Promise<CliRun>;
  /** `list --json`, parsed (the run must succeed). */
  listed(): Promise<Json[]>;
  /** The request for `tool` whose arguments carry `marker`, once it exists in `status`. */
  requestFor(tool: string, marker: string, status?: string): Promise<Json>;
}

/** The CLI on the proxy's store: `store` is its --state-dir, or its store flags as given
 * (e.g. `--state-dsn redis://… --state-prefix p`). */
export function approvalsCli(policy: string, store: string | string[]): ApprovalsCli {
  const storeFlags = typeof store === 'string' ? ['--state-dir', store] : store;
  const cli: ApprovalsCli = {
    async run(...args) {
      try {
        const { stdout, stderr } = await run(process.execPath, [INTERCEPT_BIN, 'approvals', ...args, '-c', policy, ...storeFlags], { cwd: ROOT, timeout: 60_000 });
        return { code: 0, stdout, stderr };
      } catch (err) {
        const e = err as { code?: number; stdout?: string; stderr?: string };
        return { code: typeof e.code === 'number' ? e.code : -1, stdout: e.stdout ?? '', stderr: e.stderr ?? '' };
      }
    },
    async listed() {
      const out = await cli.run('list', '--json');
      assert.equal(out.code, 0, out.stderr);
      return JSON.parse(out.stdout) as Json[];
    },
    requestFor(tool, marker, status = 'pending') {
      return eventually(async () =>
        (await cli.listed()).find((r) => r.tool === tool && JSON.stringify(r.arguments).includes(marker) && r.status === status),
      );
    },
  };
  return cli;
}

/** How many tools/call requests carrying `marker` reached the server, by its tee log(s). */
export async function callsReaching(marker: string, ...teeLogs: string[]): Promise<number> {
  let n = 0;
  for (const log of teeLogs) {
    const lines = await readTeeLog(log);
    n += lines.filter((m) => isRecord(m) && m.method === 'tools/call' && JSON.stringify(m.params).includes(marker)).length;
  }
  return n;
}

/** The `_meta["intercept/approval"]` of a denial in retry mode (`{id, expiresAt}`). */
export function approvalMeta(result: unknown): Json {
  const meta = isRecord(result) && isRecord(result._meta) ? result._meta['intercept/approval'] : undefined;
  assert.ok(isRecord(meta), `expected _meta["intercept/approval"] on ${JSON.stringify(result)}`);
  return meta;
}
