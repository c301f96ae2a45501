// `intercept dashboard`: a local web page that watches the proxies writing to one audit trail
// and, with the proxy's policy file, shows its pending approvals and counters and decides
// approvals from the page. It runs until interrupted.
import { hostname } from 'node:os';
import { DEFAULT_EVENTS_DIR, EventLog, instanceName } from '../audit/writer.js';
import { refusal, startDashboard } from '../dashboard/server.js';
import { createLogger, type LogLevel } from '../log.js';
import { checkStateDsn } from '../state/open.js';

export interface DashboardFlags {
  port: string;
  bind?: string;
  token?: string;
  eventsDir?: string;
  config?: string;
  stateDir?: string;
  stateDsn?: string;
  statePrefix?: string;
  logLevel?: LogLevel;
}

export async function runDashboard(flags: DashboardFlags): Promise<number> {
  const port = /^\d{1,5}$/.test(flags.port) ? Number(flags.port) : NaN;
  if (!(port >= 0 && port <= 65535)) return usage(`--port must be a port number from 0 to 65535, got ${JSON.stringify(flags.port)}`);
  const token = flags.token;
  if (token !== undefined && !/^\S+$/.test(token)) return usage('--token must be non-empty and hold no spaces');
  if (flags.config === undefined && (flags.stateDir ?? flags.stateDsn ?? flags.statePrefix) !== undefined) {
    return usage('--state-dir, --state-dsn and --state-prefix say where the proxy\'s stores are: give its policy file with -c too');
  }
  const dsnProblem = flags.stateDsn === undefined ? undefined : checkStateDsn(flags.stateDsn);
  if (dsnProblem) return usage(dsnProblem);
  const bind = flags.bind ?? '127.0.0.1';
  const refused = refusal({ bind, token });
  if (refused !== undefined) return usage(refused);

  const log = createLogger(flags.logLevel ?? 'info');
  const eventsDir = flags.eventsDir ?? DEFAULT_EVENTS_DIR;
  // Decisions made on the page are recorded by this process, in its own trail file.
  const trail = await EventLog.open({ dir: eventsDir, instance: instanceName(`dashboard-${hostname()}`), retentionDays: 0, log });
  const stores = flags.config === undefined ? undefined : { config: flags.config, stateDir: flags.stateDir, stateDsn: flags.stateDsn, statePrefix: flags.statePrefix };
  let dashboard;
  try {
    dashboard = await startDashboard({ bind, port, token, eventsDir, stores, trail, log });
  } catch (err) {
    await trail.close();
    process.stderr.write(`intercept dashboard: cannot start on ${bind}:${port}: ${(err as Error).message}\n`);
    return 1;
  }
  process.stderr.write(`Intercept dashboard on ${dashboard.url}${token === undefined ? '' : ' (open it once as /?token=<your token>)'}\n`);

  await new Promise<void>((resolve) => {
    const stop = () => resolve();
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  await dashboard.close();
  await trail.close();
  return 0;
}

function usage(message: string): number {
  process.stderr.write(`intercept dashboard: ${message}\n`);
  return 2;
}
