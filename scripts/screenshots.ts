/**
 * `npm run screenshots`: takes the README's screenshots of the login and
 * consent pages (and the demo app afterwards) with Chromium, from a real
 * `npm start` (scripts/start.ts) moved to free ports, and writes them to docs/.
 *
 *   CHROMIUM   the browser to drive (default /usr/bin/chromium, Debian's package)
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { chromium } from "playwright-core";
import { parse, stringify } from "yaml";
import { freePort } from "../test/support/redis-server.js";

const root = fileURLToPath(new URL("..", import.meta.url));

/** True when nothing listens on the loopback port. */
async function isFree(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once("error", () => resolve(false));
    server.listen(port, "127.0.0.1", () => server.close(() => resolve(true)));
  });
}

async function main(): Promise<void> {
  // The ports of config/dev.yaml when they are free (the pictures then show what `npm start` shows), else any.
  const defaults = { gateway: 8080, authz: 50051, demo: 3000, api: 3001 };
  const useDefaults = (await Promise.all(Object.values(defaults).map(isFree))).every(Boolean);
  const ports = useDefaults ? defaults : { gateway: await freePort(), authz: await freePort(), demo: await freePort(), api: await freePort() };
  const file = parse(readFileSync(join(root, "config/dev.yaml"), "utf8").split("127.0.0.1:3001").join(`127.0.0.1:${ports.api}`)) as Record<string, any>;
  file.issuer = `http://localhost:${ports.gateway}`;
  file.authz.port = ports.authz;
  file.gateway.port = ports.gateway;
  file.gateway.authz.endpoints = [`http://127.0.0.1:${ports.authz}`];
  (file.clients as Array<{ id: string; redirectUris: string[] }>).find((c) => c.id === "demo-app")!.redirectUris = [`http://localhost:${ports.demo}/callback`];
  const dir = mkdtempSync(join(tmpdir(), "gatehouse-screenshots-"));
  writeFileSync(join(dir, "config.yaml"), stringify(file));

  const child = spawn(process.execPath, ["--import", "tsx", "scripts/start.ts"], {
    cwd: root,
    env: { ...process.env, GATEHOUSE_CONFIG: join(dir, "config.yaml"), DEMO_API_PORT: String(ports.api), LOG_LEVEL: "warn" },
    stdio: ["ignore", "pipe", "inherit"],
  });
  const demoUrl = await new Promise<string>((resolve, reject) => {
    let output = "";
    child.stdout!.on("data", (chunk: Buffer) => {
      output += chunk.toString("utf8");
      const match = /Open (http\S+) and click/.exec(output);
      if (match !== null) resolve(match[1]!);
    });
    child.once("exit", (code) => reject(new Error(`npm start exited (${code}) before it was ready:\n${output}`)));
  });

  const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--no-first-run", "--disable-sync", "--disable-quic"],
  });
  try {
    const context = await browser.newContext({ viewport: { width: 820, height: 640 }, colorScheme: "light" });
    const page = await context.newPage();
    await page.goto(demoUrl);
    await page.getByRole("link", { name: "Sign in with gatehouse" }).click();
    await page.getByLabel("Password").waitFor();
    await page.screenshot({ path: join(root, "docs/login.png") });
    await page.getByLabel("Username").fill("demo");
    await page.getByLabel("Password").fill("demo-password");
    await page.getByRole("button", { name: "Sign in" }).click();
    await page.getByRole("button", { name: "Allow" }).waitFor();
    await page.screenshot({ path: join(root, "docs/consent.png") });
    await page.getByRole("button", { name: "Allow" }).click();
    await page.getByRole("heading", { name: "Signed in" }).waitFor();
    await page.getByRole("button", { name: "GET /api/profile" }).click();
    await page.getByText(/\/api\/profile → HTTP/).waitFor();
    await page.setViewportSize({ width: 900, height: 1100 });
    await page.screenshot({ path: join(root, "docs/demo-signed-in.png") });

    const phone = await browser.newContext({ viewport: { width: 360, height: 640 }, isMobile: true, deviceScaleFactor: 2, colorScheme: "dark" });
    const small = await phone.newPage();
    await small.goto(new URL("/login", demoUrl).href);
    await small.getByLabel("Password").waitFor();
    await small.screenshot({ path: join(root, "docs/login-phone.png") });
    process.stdout.write("wrote docs/login.png, docs/consent.png, docs/demo-signed-in.png, docs/login-phone.png\n");
  } finally {
    await browser.close();
    child.kill("SIGINT");
    await new Promise((resolve) => child.once("exit", resolve));
    rmSync(dir, { recursive: true, force: true });
  }
}

await main();
