// `intercept approvals …` as its own process on a proxy's store, as a second terminal would run
// it, and the views the approval tests read from it.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { INTERCEPT_BIN, ROOT } from './paths.js';
import { eventually } from './wait.js';
import type { Json } from './messages.js';

const run = promisify(execFile);

export interface CliRun {
  code: number;
  stdout: string;
  stderr: string;
}

export interface ApprovalsCli {
  /** `intercept approvals <args> -c <policy> --state-dir <dir>`. */
  run(...args: string[]): Promise<CliRun>;
  /** `list --json`, parsed (the run must succeed). */
  listed(): Promise<Json[]>;
  /** The request for `tool` whose arguments carry `marker`, once it exists in `status`. */
  requestFor(tool: string, marker: string, status?: string): Promise<Json>;
}

export function approvalsCli(policy: string, stateDir: string): ApprovalsCli {
  const cli: ApprovalsCli = {
    async run(...args) {
      try {
        const { stdout, stderr } = await run(process.execPath, [INTERCEPT_BIN, 'approvals', ...args, '-c', policy, '--state-dir', stateDir], { cwd: ROOT, timeout: 60_000 });
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
