/**
 * Baseline (g0) of bench:guard: a bare fastify GET that answers 200 with no
 * body, as the check endpoint does when it allows. PORT from the environment.
 */
import Fastify from "fastify";

const app = Fastify({ logger: false });
app.get("/*", async (_request, reply) => reply.code(200).header("cache-control", "no-store").send(""));
await app.listen({ host: "127.0.0.1", port: Number(process.env.PORT ?? 0) });
process.stdout.write(`bare fastify listening on ${(app.server.address() as { port: number }).port}\n`);
process.once("SIGTERM", () => void app.close().then(() => process.exit(0)));
