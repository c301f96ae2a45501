// The root command: check the flags, load the policy, start the proxy.
import { readFile } from 'node:fs/promises';
import { compile } from '../engine/compile.js';
import { parseByteSize } from '../jsonrpc/framing.js';
import { createLogger, type LogLevel } from '../log.js';
import { formatIssue } from '../policy/format.js';
import { parsePolicy } from '../policy/load.js';
import { PolicyHolder } from '../policy/watch.js';
import { runStdioProxy } from '../proxy/run-stdio.js';
import { checkStateDsn, openCounterStore, policyNamespace } from '../state/open.js';
import { notYet } from './not-yet.js';

export interface ProxyFlags {
  config?: string;
  upstream?: string;
  header: string[];
  transport: 'stdio' | 'http' | 'sse';
  bind: string;
  port: string;
  stateDir?: string;
  stateDsn?: string;
  statePrefix?: string;
  stateFailMode: 'open' | 'closed';
  logLevel: LogLevel;
  maxMessageSize: string;
  watch: boolean;
  /** --bind or --port was given on the command line (not just defaulted). */
  listenerFlagsGiven: boolean;
}

function usage(message: string): number {
  process.stderr.write(`intercept: ${message}\nRun 'intercept --help' for usage.\n`);
  return 2;
}

export async function runProxyCommand(flags: ProxyFlags, command: string[] | undefined): Promise<number> {
  if (!flags.config) return usage('a policy file is required: -c policy.yaml');
  if (flags.listenerFlagsGiven && flags.transport === 'stdio') {
    return usage('--bind and --port require --transport http or --transport sse');
  }
  if (flags.header.length > 0 && !flags.upstream) return usage('--header requires --upstream');
  for (const h of flags.header) {
    if (!/^[^:\s]+:\s*.*$/.test(h)) return usage(`--header must look like "Name: Value", got ${JSON.stringify(h)}`);
  }
  if (flags.stateDir && flags.stateDsn) return usage('--state-dir and --state-dsn cannot be used together');
  const badDsn = flags.stateDsn === undefined ? undefined : checkStateDsn(flags.stateDsn);
  if (badDsn) return usage(badDsn);
  const port = Number(flags.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) return usage(`--port must be a port number, got ${JSON.stringify(flags.port)}`);
  const maxMessageBytes = parseByteSize(flags.maxMessageSize);
  if (maxMessageBytes === null) return usage(`--max-message-size must be a size such as 4MiB, got ${JSON.stringify(flags.maxMessageSize)}`);
  const hasCommand = command !== undefined && command.length > 0;
  if (hasCommand && flags.upstream) return usage('cannot specify both a server command (after --) and --upstream URL');
  if (!hasCommand && !flags.upstream) return usage("specify either a server command after '--' or --upstream URL");

  // Backends that arrive in later versions: refuse clearly rather than pretend.
  if (flags.transport !== 'stdio') return notYet(`--transport ${flags.transport}`, 'the HTTP listener');
  if (flags.upstream) return notYet('--upstream', 'support for remote (HTTP) upstream servers');

  const log = createLogger(flags.logLevel);
  let text: string;
  try {
    text = await readFile(flags.config, 'utf8');
  } catch (err) {
    log.error(`cannot read the policy file ${JSON.stringify(flags.config)}: ${(err as Error).message}`);
    return 1;
  }
  const loaded = parsePolicy(text, flags.config);
  if (!loaded.ok) {
    log.error(`the policy file has ${loaded.issues.length} error(s); not starting`);
    for (const issue of loaded.issues) process.stderr.write(formatIssue(issue) + '\n');
    return 1;
  }
  const statePrefix = flags.statePrefix ?? policyNamespace(flags.config);
  let state;
  try {
    state = await openCounterStore({ stateDir: flags.stateDir, stateDsn: flags.stateDsn, prefix: statePrefix, log });
  } catch (err) {
    log.error(`cannot open the counter store: ${(err as Error).message}`);
    return 1;
  }
  const holder = new PolicyHolder(compile(loaded.policy), text);
  if (flags.watch) holder.watch(flags.config, log);

  const [cmd, ...args] = command!;
  log.info('starting', { policy: flags.config, server: cmd, counters: state.description, failMode: flags.stateFailMode });
  const code = await runStdioProxy({
    upstream: { kind: 'command', command: cmd!, args },
    policy: holder,
    store: state.store,
    log,
    maxMessageBytes,
    failMode: flags.stateFailMode,
    statePrefix,
  });
  await state.store.close().catch(() => {});
  // Exit now: the client may still hold our stdin open, and the server is gone.
  process.exit(code);
}
