// Preloaded into every test process. With --test-force-exit, node's test runner ends a test
// file's process as soon as its tests are done, and the results travel to the runner over that
// process's stdout: a pipe, non-blocking on Linux, so the last of them could be cut off by the
// exit and a run report fewer tests than ran, failures included (nodejs/node#64833). A blocking
// stdout has written everything before the exit.
const handle = (process.stdout as unknown as { _handle?: { setBlocking?: (blocking: boolean) => void } })._handle;
handle?.setBlocking?.(true);
