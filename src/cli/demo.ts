import { runDemo } from '../demo/agent.js';

export function runDemoCommand(opts: { policy?: string; verbose?: boolean }): Promise<number> {
  return runDemo({ policy: opts.policy, verbose: opts.verbose });
}
