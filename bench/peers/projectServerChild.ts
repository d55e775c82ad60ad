/**
 * The project's server as the peer benchmark runs it: the real `dist/server.js` (its CLI, with the
 * arguments given to this script), in a process that also answers heap requests (heapProbe.ts).
 *
 *   node --expose-gc out/bench/peers/projectServerChild.js serve --port 0 --data DIR
 */
import { SERVER_JS } from '../serverProc';
import { answerHeapRequests } from './heapProbe';

answerHeapRequests();
// dist/server.js reads its arguments from process.argv.slice(2), as when run directly.
process.argv = [process.argv[0], SERVER_JS, ...process.argv.slice(2)];
// eslint-disable-next-line @typescript-eslint/no-require-imports -- dist/server.js is a script found at run time, not a module of this build
require(SERVER_JS);
