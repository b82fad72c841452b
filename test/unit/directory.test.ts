import { describe, expect, it } from "vitest";
import { configurationSource, createDirectory, type DirectorySource } from "../../services/authz/oauth/directory.js";
import type { Client, ScopeDefinition, User } from "../../services/authz/oauth/model.js";

function client(id: string, name = id): Client {
  return {
    id,
    name,
    type: "public",
    secretHashes: [],
    redirectUris: ["https://client.example/cb"],
    scopes: ["read"],
    defaultScopes: ["read"],
    grantTypes: new Set(["authorization_code"]),
    responseTypes: new Set(["code"]),
    pkce: { required: true, allowPlain: false },
    refreshGraceSeconds: 0,
    firstParty: false,
    introspectAnyToken: false,
  };
}
const user = (username: string, subject: string): User => ({ username, subject, passwordHash: "scrypt$", groups: [], disabled: false });
const scope = (name: string, description = name): ScopeDefinition => ({ name, description });

const configured = configurationSource({
  clients: new Map([["web", client("web", "from the file")]]),
  users: new Map([["alice", user("alice", "sub-alice")]]),
  scopes: new Map([["read", scope("read", "from the file")], ["write", scope("write")]]),
});
/** A source of entries created at run time, the way the store's would answer (asynchronously). */
const runtime: DirectorySource = {
  findClient: async (id) => (id === "web" ? client("web", "created at run time") : id === "cli" ? client("cli") : undefined),
  findUser: async (name) => (name === "bob" ? user("bob", "sub-bob") : undefined),
  findUserBySubject: async (subject) => (subject === "sub-bob" ? user("bob", "sub-bob") : undefined),
  scopes: async () => new Map([["read", scope("read", "created at run time")], ["admin", scope("admin")]]),
};
const directory = createDirectory([configured, runtime]);

describe("the directory: the configuration's entries first, then those created at run time", () => {
  it.each([
    ["web", "from the file"],
    ["cli", "cli"],
    ["nobody", undefined],
    ["__proto__", undefined],
  ])("findClient(%j) answers from the first source that has it (%j)", async (id, name) => {
    expect((await directory.findClient(id))?.name).toBe(name);
  });

  it.each([
    ["alice", "sub-alice"],
    ["bob", "sub-bob"],
    ["carol", undefined],
  ])("findUser(%j) → %j, and findUserBySubject finds the same user", async (username, subject) => {
    expect((await directory.findUser(username))?.subject).toBe(subject);
    if (subject !== undefined) expect((await directory.findUserBySubject(subject))?.username).toBe(username);
  });

  it("scopes(): every source's, the configuration's order first, and a name declared in the file is never overridden", async () => {
    const scopes = await directory.scopes();
    expect([...scopes.keys()]).toEqual(["read", "write", "admin"]);
    expect(scopes.get("read")?.description).toBe("from the file");
  });

  it("a directory of the configuration alone answers with the configuration's own map", async () => {
    const scopes = new Map([["read", scope("read")]]);
    expect(await createDirectory([configurationSource({ clients: new Map(), users: new Map(), scopes })]).scopes()).toBe(scopes);
  });
});
