import type { AddressInfo } from "node:net";
import type { Server } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { createDemoResourceServer } from "../../demo/demo-resource-server.js";

/** The demo API behind the gateway: it serves only what the guard vouched for (identity headers). */
let server: Server;
let url: string;
beforeAll(async () => {
  server = createDemoResourceServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((resolve) => server.close(() => resolve())));

const verified = { "x-gatehouse-subject": "demo-user", "x-gatehouse-client": "demo-app", "x-gatehouse-scope": "profile:read notes:read notes:write" };

describe("demo resource server", () => {
  it("refuses a call that did not come through the gateway (no verified identity)", async () => {
    const response = await fetch(`${url}/api/profile`);
    expect(response.status).toBe(401);
  });

  it("GET /api/profile answers with the verified identity", async () => {
    const response = await fetch(`${url}/api/profile`, { headers: verified });
    expect(response.status).toBe(200);
    expect(await response.json()).toMatchObject({ subject: "demo-user", client: "demo-app", scope: ["profile:read", "notes:read", "notes:write"] });
  });

  it("POST then GET /api/notes keeps each subject's notes apart", async () => {
    const created = await fetch(`${url}/api/notes`, { method: "POST", headers: { ...verified, "content-type": "application/json" }, body: JSON.stringify({ text: "hello" }) });
    expect(created.status).toBe(201);
    const mine = (await (await fetch(`${url}/api/notes`, { headers: verified })).json()) as { notes: Array<{ text: string }> };
    expect(mine.notes.map((n) => n.text)).toEqual(["hello"]);
    const theirs = (await (await fetch(`${url}/api/notes`, { headers: { ...verified, "x-gatehouse-subject": "someone-else" } })).json()) as { notes: Array<{ text: string }> };
    expect(theirs.notes.map((n) => n.text)).not.toContain("hello");
  });

  it("refuses a note that is not JSON {text}", async () => {
    const response = await fetch(`${url}/api/notes`, { method: "POST", headers: verified, body: "text=hi" });
    expect(response.status).toBe(400);
  });
});
