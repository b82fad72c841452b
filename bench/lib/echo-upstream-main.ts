/**
 * The benchmark's upstream as a process of its own: the tests' echo upstream,
 * not recording, answering a small constant body. PORT picks the port.
 */
import { startEchoUpstream } from "../../test/support/echo-upstream.js";

const upstream = await startEchoUpstream({ record: false, port: Number(process.env.PORT ?? 0) });
process.stdout.write(`echo upstream listening on ${upstream.port}\n`);
process.once("SIGTERM", () => void upstream.close().then(() => process.exit(0)));
