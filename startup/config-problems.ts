import type { z } from "zod";

/**
 * Every schema issue as one "path.in.file: message" line, all of them, in
 * zod's order. Paths read as they would in the YAML: `clients[2].pkce.required`;
 * an issue about the document itself is at `(root)`.
 */
export function listSchemaProblems(issues: readonly z.core.$ZodIssue[]): string[] {
  return issues.map((issue) => `${formatPath(issue.path)}: ${issue.message}`);
}

function formatPath(path: readonly PropertyKey[]): string {
  if (path.length === 0) return "(root)";
  return path.map((part, i) => (typeof part === "number" ? `[${part}]` : `${i === 0 ? "" : "."}${String(part)}`)).join("");
}
