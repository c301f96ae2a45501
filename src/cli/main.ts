// The `intercept` command line. Everything after the first `--` is the server command and is
// never parsed as options, so a server whose name or arguments look like our own subcommands
// or flags is passed through untouched. Each command's module is loaded only when that command
// runs: the proxy does not carry the scanner, the demo or the SDK clients in memory.
import { readFileSync } from 'node:fs';
import { Command, CommanderError, Option } from 'commander';
import { DEFAULT_MAX_DEPTH } from '../jsonrpc/depth.js';
import { LOG_LEVELS } from '../log.js';

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { version: string };

function collect(value: string, previous: string[]): string[] {
  return [...previous, value];
}

export async function main(argv: string[]): Promise<number> {
  const dash = argv.indexOf('--');
  const own = dash === -1 ? argv : argv.slice(0, dash);
  const tail = dash === -1 ? undefined : argv.slice(dash + 1);
  let exitCode = 0;

  const program = new Command('intercept')
    .description('Enforce a YAML policy on every tool call an AI agent makes through MCP.')
    .version(pkg.version, '-V, --version')
    .usage('-c policy.yaml [options] -- <command> [args...]')
    .enablePositionalOptions()
    .showHelpAfterError('(run intercept --help for usage)')
    .exitOverride()
    .option('-c, --config <file>', 'policy file (YAML)')
    .option('--upstream <url>', 'remote MCP server URL instead of a command')
    .option('--header <header>', 'HTTP header for the upstream, "Name: Value" (repeatable)', collect, [])
    .addOption(
      new Option('--upstream-transport <mode>', 'how to reach --upstream: auto (Streamable HTTP, else legacy HTTP+SSE), streamable, or sse')
        .choices(['auto', 'streamable', 'sse'])
        .default('auto'),
    )
    .addOption(new Option('--transport <mode>', 'how clients connect: stdio, or an HTTP listener (http, sse)').choices(['stdio', 'http', 'sse']).default('stdio'))
    .option('--bind <address>', 'listener address (with --transport http|sse)', '127.0.0.1')
    .option('--port <port>', 'listener port; 0 picks a free one (with --transport http|sse)', '0')
    .addOption(new Option('--auth-token <token>', 'bearer token every HTTP client must send (with --transport http|sse)').env('INTERCEPT_AUTH_TOKEN'))
    .addOption(new Option('--approvals-token <token>', 'bearer token for the listener\'s /approvals endpoints (never the agents\' token); without it they are off').env('INTERCEPT_APPROVALS_TOKEN'))
    .option('--approval-webhook <url>', 'POST each new approval request as JSON to this URL (a chat bridge, a web UI)')
    .addOption(new Option('--approval-webhook-secret <secret>', 'sign webhook bodies with HMAC-SHA256 (X-Intercept-Signature)').env('INTERCEPT_APPROVAL_WEBHOOK_SECRET'))
    .option('--allowed-origin <origin>', 'browser origin allowed besides localhost, e.g. https://app.example.com (repeatable)', collect, [])
    .option('--session-key <how>', 'who an agent is, for scope: session limits: session, token, client-info, or header:<Name> (default: session; with --oauth-issuer, the token\'s subject)')
    .option('--oauth-issuer <url>', 'accept only bearer JWTs of this OAuth authorization server, its keys found in its metadata (with --transport http|sse)')
    .option('--jwks-url <url>', "the issuer's JSON Web Key Set, instead of finding it in the issuer's metadata")
    .option('--oauth-audience <aud>', "the audience tokens must name (default: the resource URL)")
    .option('--oauth-resource <url>', 'the URL clients reach the listener by, e.g. behind a reverse proxy (default: the listener\'s own /mcp URL)')
    .option('--oauth-required-scope <scope>', 'a scope every token must carry, else 403 (repeatable)', collect, [])
    .option('--session-idle-timeout <seconds>', 'end HTTP sessions unused this long; 0 = never', '1800')
    .option('--call-timeout <duration>', 'answer a forwarded tool call with an error when the server has not answered it by then; 0 = wait forever', '5m')
    .option('--drain-timeout <duration>', 'on SIGINT or SIGTERM, how long calls in flight get to be answered before the proxy gives up on them', '5s')
    .option('--state-dir <dir>', 'directory of the SQLite counter file (default ~/.intercept/state)')
    .option('--state-dsn <dsn>', 'shared counter store: redis://[user:pass@]host:port[/db], rediss://…, a Redis Cluster as redis+cluster://[user:pass@]host:port[,host:port…] or rediss+cluster://…; or memory: to keep nothing')
    .option('--state-prefix <prefix>', "namespace for every counter key (default: derived from the policy file's path, so proxies sharing a policy file share counters)")
    .addOption(new Option('--state-fail-mode <mode>', 'when the counter store is unreachable: closed denies calls that need a counter, open allows them').choices(['open', 'closed']).default('closed'))
    .addOption(new Option('--log-level <level>', 'stderr log level').choices([...LOG_LEVELS]).default('info'))
    .option('--max-message-size <size>', 'largest client message accepted, e.g. 4MiB', '4MiB')
    .option('--max-message-depth <levels>', 'deepest nesting of objects and arrays accepted in a message, from either side', String(DEFAULT_MAX_DEPTH))
    .option('--lock <file>', 'pinned tool definitions (intercept scan --lock): hide and refuse tools that changed or are new')
    .option('--no-watch', 'do not reload the policy file (or lock file) when it changes')
    .option('--events-dir <dir>', 'where this proxy appends its audit trail, one file per process and day (default ~/.intercept/events)')
    .option('--events-retention <days>', 'delete trail files older than this many days; 0 keeps everything', '30')
    .option('--no-events', 'write no audit trail')
    .option('--log-args', "keep calls' arguments in the trail, secrets redacted (default: only their SHA-256)")
    .option('--metrics-port <port>', 'serve Prometheus metrics at http://127.0.0.1:<port>/metrics; 0 picks a free port')
    .option('--metrics-bind <address>', 'address of the metrics endpoint (default 127.0.0.1)')
    .option('--dry-run', 'decide and record every call, but forward it even when the policy would deny it (shadow mode)')
    .option('--identity <key=value>', 'who the calls are made by (stdio): sub=alice, client_id=…, scopes="read write", claims.<name>=a,b (repeatable)', collect, [])
    .addHelpText(
      'after',
      `
Examples:
  intercept -c policy.yaml -- npx -y @modelcontextprotocol/server-filesystem /tmp
  intercept validate -c policy.yaml
  intercept scan -o policy.yaml -- npx -y @modelcontextprotocol/server-memory
  intercept explain -c policy.yaml --tool create_issue --args '{"title":"x"}'
  intercept demo

Exit status: the server's own status when it exits; 1 when the policy does not load;
2 for usage errors.`,
    )
    .action(async (opts) => {
      if (own.length === 0 && tail === undefined) {
        program.outputHelp();
        return;
      }
      const given = (name: string) => program.getOptionValueSource(name) === 'cli';
      exitCode = await (await import('./proxy.js')).runProxyCommand({ ...opts, version: pkg.version, listenerFlagsGiven: ['bind', 'port', 'authToken', 'approvalsToken', 'allowedOrigin', 'sessionKey', 'sessionIdleTimeout'].some(given) }, tail);
    });

  program
    .command('validate')
    .description('check a policy file and report every error with its line and field; given a server, also every entry that matches none of its tools')
    .usage('-c policy.yaml [--format text|json] [--strict] [--timeout 30s] [-- <command> [args...] | --upstream <url> [--header "Name: Value"]...]')
    .requiredOption('-c, --config <file>', 'policy file (YAML)')
    .addOption(new Option('--format <format>', 'output format').choices(['text', 'json']).default('text'))
    .option('--strict', 'with a server: fail (exit 1) when an entry matches none of its tools')
    .option('--timeout <duration>', 'with a server: give up when it has not listed its tools by then', '30s')
    .option('--upstream <url>', 'check against a remote MCP server at this URL instead of starting a command')
    .option('--header <header>', 'HTTP header for --upstream, "Name: Value" (repeatable)', collect, [])
    .addOption(
      new Option('--upstream-transport <mode>', 'how to reach --upstream: auto (Streamable HTTP, else legacy HTTP+SSE), streamable, or sse')
        .choices(['auto', 'streamable', 'sse'])
        .default('auto'),
    )
    .action(async (opts) => {
      exitCode = await (await import('./validate.js')).runValidate({ ...opts, clientVersion: pkg.version }, tail);
    });

  program
    .command('explain')
    .description('show the decision for one tool call, rule by rule, without any server')
    .requiredOption('-c, --config <file>', 'policy file (YAML)')
    .requiredOption('--tool <name>', 'tool name')
    .option('--args <json>', 'the call arguments as a JSON object', '{}')
    .option('--input-schema <json>', "the tool's inputSchema, for validate rules")
    .option('--counter <id=value>', 'a counter value to assume, e.g. create_issue._rate_hour=5 (repeatable)', collect, [])
    .option('--identity <key=value>', 'who makes the call: sub=alice, client_id=…, scopes="read write", claims.<name>=a,b (repeatable)', collect, [])
    .option('--json', 'print the decision as JSON')
    .action(async (opts) => {
      exitCode = await (await import('./explain.js')).runExplain(opts);
    });

  program
    .command('demo')
    .description('run the proxy in front of a bundled demo server with a scripted agent')
    .option('--policy <file>', 'use this policy instead of the demo policy')
    .option('--verbose', "show the proxy's log")
    .action(async (opts) => {
      exitCode = await (await import('./demo.js')).runDemoCommand(opts);
    });

  program
    .command('scan')
    .description("start a server, list its tools and write a starting policy for them")
    .usage('[-o policy.yaml] [--recommended] [--format yaml|json] [--timeout 30s] (-- <command> [args...] | --upstream <url> [--header "Name: Value"]...)')
    .option('-o, --output <file>', 'write the policy here instead of stdout (directories are created)')
    .option('--recommended', 'enable the recommended rules instead of leaving them commented out')
    .option('--lock', 'write a lock file pinning every tool definition (default -o intercept.lock) instead of a policy')
    .addOption(new Option('--format <format>', 'output format').choices(['yaml', 'json']).default('yaml'))
    .option('--timeout <duration>', 'give up when the server has not listed its tools by then', '30s')
    .option('--upstream <url>', 'scan a remote MCP server at this URL instead of starting a command')
    .option('--header <header>', 'HTTP header for --upstream, "Name: Value" (repeatable)', collect, [])
    .addOption(
      new Option('--upstream-transport <mode>', 'how to reach --upstream: auto (Streamable HTTP, else legacy HTTP+SSE), streamable, or sse')
        .choices(['auto', 'streamable', 'sse'])
        .default('auto'),
    )
    .action(async (opts) => {
      exitCode = await (await import('./scan.js')).runScan({ ...opts, clientVersion: pkg.version }, tail);
    });

  program
    .command('lock')
    .description("compare a server's tools with a lock file; with --update, accept their current definitions")
    .usage('[--update] [--lock intercept.lock] [--timeout 30s] (-- <command> [args...] | --upstream <url> [--header "Name: Value"]...)')
    .option('--lock <file>', 'the lock file', 'intercept.lock')
    .option('--update', 'write the current definitions to the lock file')
    .option('--timeout <duration>', 'give up when the server has not listed its tools by then', '30s')
    .option('--upstream <url>', 'list the tools of a remote MCP server at this URL instead of starting a command')
    .option('--header <header>', 'HTTP header for --upstream, "Name: Value" (repeatable)', collect, [])
    .addOption(
      new Option('--upstream-transport <mode>', 'how to reach --upstream: auto (Streamable HTTP, else legacy HTTP+SSE), streamable, or sse')
        .choices(['auto', 'streamable', 'sse'])
        .default('auto'),
    )
    .action(async (opts) => {
      exitCode = await (await import('./lock.js')).runLock({ ...opts, clientVersion: pkg.version }, tail);
    });

  const approvals = program
    .command('approvals')
    .description('list, show, approve or deny calls held for a human (require_approval)');
  const storeOptions = (cmd: Command) =>
    cmd
      .option('-c, --config <file>', "the proxy's policy file (its path names the proxy's store namespace)")
      .option('--state-dir <dir>', 'directory of the SQLite files (default ~/.intercept/state)')
      .option('--state-dsn <dsn>', 'the Redis the proxies share (redis://…, rediss://…, redis+cluster://…)')
      .option('--state-prefix <prefix>', "the proxies' --state-prefix, when they were given one")
      .option('--json', 'print JSON');
  storeOptions(approvals.command('list').description('requests, newest first'))
    .option('--status <status>', 'only requests with this status (pending, approved, denied, expired, used, withdrawn)')
    .action(async (opts) => {
      exitCode = await (await import('./approvals.js')).runApprovals({ kind: 'list' }, opts);
    });
  storeOptions(approvals.command('show').description('one request in full').argument('<id>'))
    .action(async (id: string, opts) => {
      exitCode = await (await import('./approvals.js')).runApprovals({ kind: 'show', id }, opts);
    });
  for (const verb of ['approve', 'deny'] as const) {
    storeOptions(approvals.command(verb).description(`${verb} a pending request`).argument('<id>'))
      .option('--reason <text>', 'why (recorded, and shown to the agent on a denial)')
      .option('--events-dir <dir>', 'record the decision in this audit trail (default ~/.intercept/events)')
      .option('--no-events', 'do not record the decision in the audit trail')
      .action(async (id: string, opts) => {
        exitCode = await (await import('./approvals.js')).runApprovals({ kind: 'decide', id, approve: verb === 'approve' }, opts);
      });
  }

  program
    .command('audit')
    .description('check the audit trail')
    .command('verify')
    .description('check that no line of the audit trail was edited, inserted, reordered or deleted; exit 0 when intact, 1 when not')
    .option('--events-dir <dir>', 'the trail (default ~/.intercept/events)')
    .option('--events-retention <days>', "the proxies' --events-retention: a chain may start after files older than this", '30')
    .option('--json', 'print the report as JSON')
    .action(async (opts) => {
      exitCode = await (await import('./audit.js')).runAuditVerify(opts);
    });

  program
    .command('status')
    .description('what the proxies writing to one audit trail have done: proxies, calls, denials and their rules; with -c, pending approvals and counters near their limits')
    .option('--events-dir <dir>', 'the trail (default ~/.intercept/events)')
    .option('--since <duration>', 'summarise this far back', '24h')
    .option('-c, --config <file>', "the proxy's policy file: read its counters and approvals from the proxy's store")
    .option('--state-dir <dir>', 'directory of the SQLite files (default ~/.intercept/state)')
    .option('--state-dsn <dsn>', 'the Redis the proxies share (redis://…, rediss://…, redis+cluster://…)')
    .option('--state-prefix <prefix>', "the proxies' --state-prefix, when they were given one")
    .option('--color', 'colour the table even when stdout is not a terminal')
    .option('--no-color', 'no colour, even on a terminal')
    .option('--json', 'print the report as JSON')
    .action(async (opts) => {
      exitCode = await (await import('./status.js')).runStatus(opts);
    });

  program
    .command('logs')
    .description("the audit trail of every proxy writing to one directory, in time order")
    .option('--events-dir <dir>', 'the trail (default ~/.intercept/events)')
    .option('-f, --follow', 'keep printing events as the proxies write them, until interrupted')
    .option('--denied', 'only denied calls (and calls --dry-run would have denied)')
    .option('--tool <name>', 'only events of this tool (* and ? match as in policy keys)')
    .option('--type <type>', 'only events of this type (tool_call, startup, approval_decided, …)')
    .option('--since <duration>', 'start this far back', '1h')
    .option('--json', 'print each record exactly as stored, one per line')
    .action(async (opts) => {
      exitCode = await (await import('./logs.js')).runLogs(opts);
    });

  program
    .command('dashboard')
    .description('a local web page: live calls, denials, counters, and pending approvals to approve or deny')
    .option('--port <port>', 'port to listen on; 0 picks a free one', '8470')
    .option('--bind <address>', 'address to listen on; beyond loopback --token is required', '127.0.0.1')
    .addOption(new Option('--token <token>', 'token every request must carry (Authorization: Bearer, or ?token= once in the browser)').env('INTERCEPT_DASHBOARD_TOKEN'))
    .option('--events-dir <dir>', 'the trail to show; decisions made on the page are recorded there (default ~/.intercept/events)')
    .option('-c, --config <file>', "the proxy's policy file: show its pending approvals and counters from the proxy's store")
    .option('--state-dir <dir>', 'directory of the SQLite files (default ~/.intercept/state)')
    .option('--state-dsn <dsn>', 'the Redis the proxies share (redis://…, rediss://…, redis+cluster://…)')
    .option('--state-prefix <prefix>', "the proxies' --state-prefix, when they were given one")
    .addOption(new Option('--log-level <level>', 'stderr log level').choices([...LOG_LEVELS]).default('info'))
    .action(async (opts) => {
      exitCode = await (await import('./dashboard.js')).runDashboard(opts);
    });

  program
    .command('replay')
    .description('decide the calls the audit trail recorded again under a new policy, and report what would change')
    .requiredOption('-c, --config <file>', 'the new policy file (YAML)')
    .option('--events <dir>', 'the trail (default ~/.intercept/events)')
    .option('--events-dir <dir>', 'the same as --events')
    .option('--since <duration>', 'replay the calls of this far back', '7d')
    .option('--input-schemas <file>', "the tools' inputSchemas, for validate and classes rules: JSON tool → inputSchema, a tools/list result, or intercept scan --format json")
    .option('--color', 'colour the tables even when stdout is not a terminal')
    .option('--no-color', 'no colour, even on a terminal')
    .option('--json', 'print the report as JSON')
    .action(async (opts) => {
      exitCode = await (await import('./replay.js')).runReplay(opts);
    });

  program
    .command('test')
    .description('run policy test cases (a call, and the decision the policy must make) without any server; exit 0 when all pass, 1 when any fails')
    .requiredOption('-c, --config <file>', 'policy file (YAML)')
    .argument('<cases>', 'the cases file (YAML, see docs/policy-tests.md)')
    .option('--json', 'print the results as JSON')
    .action(async (cases: string, opts) => {
      exitCode = await (await import('./policy-test.js')).runPolicyTest(cases, opts);
    });

  try {
    await program.parseAsync(own, { from: 'user' });
  } catch (err) {
    if (err instanceof CommanderError) {
      if (err.code === 'commander.helpDisplayed' || err.code === 'commander.version' || err.code === 'commander.help') return 0;
      return 2;
    }
    throw err;
  }
  return exitCode;
}

main(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`intercept: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
    process.exitCode = 1;
  },
);
