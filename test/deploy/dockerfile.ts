/**
 * A Dockerfile reader and linter for the rules of issue 5, and the
 * .dockerignore semantics of BuildKit (moby/patternmatcher), so the tests can
 * tell what reaches the build context without a Docker engine.
 */
import { existsSync } from "node:fs";
import { join, posix } from "node:path";
import { imageProblem } from "./policy.js";

export interface Instruction {
  keyword: string;
  /** Flags such as --from=build, --chown=1:1. */
  flags: Record<string, string>;
  /** The arguments after the flags, as written (JSON form kept as text). */
  rest: string;
  line: number;
}

export interface Stage {
  image: string;
  name: string | undefined;
  index: number;
  instructions: Instruction[];
}

/** Instructions of a Dockerfile: comments dropped, continuation lines joined. */
export function parseDockerfile(text: string): Instruction[] {
  const instructions: Instruction[] = [];
  let buffer = "";
  let start = 0;
  text.split(/\r?\n/).forEach((raw, i) => {
    const line = raw.trim();
    if (buffer === "" && (line === "" || line.startsWith("#"))) return;
    if (buffer !== "" && line.startsWith("#")) return; // comments inside a continued instruction
    if (buffer === "") start = i + 1;
    if (line.endsWith("\\")) {
      buffer += `${line.slice(0, -1).trimEnd()} `;
      return;
    }
    buffer += line;
    const match = /^(\S+)\s*(.*)$/s.exec(buffer)!;
    let rest = match[2]!.trim();
    const flags: Record<string, string> = {};
    for (let flag = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest); flag !== null; flag = /^--([a-z-]+)(?:=(\S*))?\s*/.exec(rest)) {
      flags[flag[1]!] = flag[2] ?? "";
      rest = rest.slice(flag[0].length);
    }
    instructions.push({ keyword: match[1]!.toUpperCase(), flags, rest, line: start });
    buffer = "";
  });
  return instructions;
}

export function stagesOf(instructions: Instruction[]): Stage[] {
  const stages: Stage[] = [];
  for (const instruction of instructions) {
    if (instruction.keyword === "FROM") {
      const [image, as, name] = instruction.rest.split(/\s+/);
      stages.push({ image: image!, name: as?.toUpperCase() === "AS" ? name : undefined, index: stages.length, instructions: [] });
    } else {
      stages.at(-1)?.instructions.push(instruction);
    }
  }
  return stages;
}

/** The words of a COPY/ADD/RUN argument: JSON form or whitespace-separated. */
export function words(rest: string): string[] {
  if (rest.startsWith("[")) {
    try {
      return JSON.parse(rest) as string[];
    } catch {
      return [rest];
    }
  }
  return rest.split(/\s+/).filter((w) => w !== "");
}

/** A COPY/ADD's sources and destination. */
export function copyParts(instruction: Instruction): { sources: string[]; destination: string } {
  const all = words(instruction.rest);
  return { sources: all.slice(0, -1), destination: all.at(-1) ?? "" };
}

const NPM_INSTALL = /\bnpm\s+(ci|install|i)\b/;
const PRODUCTION_ONLY = /--omit[= ]dev\b|--production\b|--only[= ]prod(uction)?\b/;
const SECRET_PATH = /(^|\/)(secrets?|\.env(\..*)?|\.npmrc|id_rsa.*|.*\.pem|.*\.key|jwks.*\.json)(\/|$)/i;
const SECRET_NAME = /SECRET|PASSWORD|PASSWD|TOKEN|CREDENTIAL|PRIVATE|API_KEY/i;

/** Whether a stage's node_modules hold only production dependencies. */
function installsProductionOnly(stage: Stage): boolean {
  const installs = stage.instructions.filter((i) => i.keyword === "RUN" && NPM_INSTALL.test(i.rest));
  return installs.length > 0 && installs.every((i) => PRODUCTION_ONLY.test(i.rest));
}

/**
 * The rules: several stages; every base image pinned to an exact version and
 * the same Node.js for all; the final stage runs as a numeric non-root USER,
 * with production dependencies only, an exec-form ENTRYPOINT, and copies in
 * no secret; no secret in ENV or ARG. Returns the problems.
 */
export function lintDockerfile(text: string): string[] {
  const problems: string[] = [];
  const stages = stagesOf(parseDockerfile(text));
  if (stages.length < 2) problems.push(`not multi-stage: ${stages.length} stage(s); build in one, run from another`);
  const names = new Set<string>();
  const bases = new Set<string>();
  for (const stage of stages) {
    if (names.has(stage.image)) continue;
    const problem = imageProblem(stage.image);
    if (problem !== undefined) problems.push(`FROM ${stage.image}: ${problem}`);
    bases.add(stage.image);
    if (stage.name !== undefined) names.add(stage.name);
  }
  if (bases.size > 1) problems.push(`stages use different base images (${[...bases].join(", ")}): node_modules built in one may not run in another`);

  const final = stages.at(-1);
  if (final === undefined) return [...problems, "no FROM"];
  const users = final.instructions.filter((i) => i.keyword === "USER");
  const user = users.at(-1)?.rest;
  if (user === undefined) problems.push("the final stage has no USER: it would run as root");
  else {
    const [uid, gid] = user.split(":");
    if (!/^\d+$/.test(uid ?? "") || (gid !== undefined && !/^\d+$/.test(gid))) problems.push(`USER ${user} is not numeric: runAsNonRoot cannot verify a user name`);
    else if (Number(uid) === 0) problems.push("USER 0 is root");
  }

  for (const instruction of final.instructions) {
    if (instruction.keyword === "RUN" && NPM_INSTALL.test(instruction.rest) && !PRODUCTION_ONLY.test(instruction.rest)) {
      problems.push(`line ${instruction.line}: the final stage installs dev dependencies (npm without --omit=dev)`);
    }
    if (instruction.keyword === "COPY" && instruction.flags.from !== undefined) {
      const from = stages.find((s) => s.name === instruction.flags.from || String(s.index) === instruction.flags.from);
      const { sources } = copyParts(instruction);
      if (sources.some((s) => /node_modules/.test(s)) && (from === undefined || !installsProductionOnly(from))) {
        problems.push(`line ${instruction.line}: copies node_modules from stage ${instruction.flags.from}, which installs dev dependencies`);
      }
    }
  }
  const nodeModulesFrom = final.instructions.some(
    (i) => i.keyword === "COPY" && i.flags.from !== undefined && copyParts(i).sources.some((s) => /node_modules/.test(s)),
  );
  if (!nodeModulesFrom && !installsProductionOnly(final)) problems.push("the final stage gets no production node_modules (npm ci --omit=dev)");

  for (const stage of stages) {
    for (const instruction of stage.instructions) {
      if ((instruction.keyword === "COPY" || instruction.keyword === "ADD") && instruction.flags.from === undefined) {
        for (const source of copyParts(instruction).sources) {
          if (SECRET_PATH.test(source)) problems.push(`line ${instruction.line}: copies ${source}, a secret, into the image`);
          if (instruction.keyword === "ADD" && /^[a-z]+:\/\//i.test(source)) problems.push(`line ${instruction.line}: ADD fetches ${source} at build time`);
        }
      }
      if (instruction.keyword === "ENV" || instruction.keyword === "ARG") {
        for (const name of instruction.rest.split(/\s+/).map((w) => w.split("=")[0]!)) {
          if (SECRET_NAME.test(name)) problems.push(`line ${instruction.line}: ${instruction.keyword} ${name} bakes a secret into the image; mount it at run time`);
        }
      }
    }
  }

  const entrypoint = final.instructions.filter((i) => i.keyword === "ENTRYPOINT").at(-1);
  if (entrypoint === undefined) problems.push("the final stage has no ENTRYPOINT");
  else if (!entrypoint.rest.startsWith("[")) problems.push("ENTRYPOINT is in shell form: /bin/sh would be PID 1 and SIGTERM would not reach node; use the exec form [...]");
  return problems;
}

/** The final stage's USER uid. */
export function finalUid(text: string): number {
  const user = stagesOf(parseDockerfile(text)).at(-1)?.instructions.filter((i) => i.keyword === "USER").at(-1)?.rest ?? "";
  return Number(user.split(":")[0]);
}

interface IgnorePattern {
  exclusion: boolean;
  regex: RegExp;
  dirs: number;
}

/** .dockerignore patterns as BuildKit reads them (moby/patternmatcher). */
export function parseDockerignore(text: string): IgnorePattern[] {
  return text
    .split(/\r?\n/)
    .map((line) => line.trim())
    .filter((line) => line !== "" && !line.startsWith("#"))
    .map((line) => {
      const exclusion = line.startsWith("!");
      let pattern = (exclusion ? line.slice(1) : line).trim();
      pattern = posix.normalize(pattern).replace(/^\/+/, "").replace(/\/+$/, "");
      let source = "";
      for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i]!;
        if (c === "*" && pattern[i + 1] === "*") {
          i++;
          if (pattern[i + 1] === "/") {
            i++;
            source += "(.*/)?";
          } else source += ".*";
        } else if (c === "*") source += "[^/]*";
        else if (c === "?") source += "[^/]";
        else if (c === "\\" && i + 1 < pattern.length) source += `\\${pattern[++i]}`;
        else source += c.replace(/[.+^${}()|[\]\\]/g, "\\$&");
      }
      return { exclusion, regex: new RegExp(`^${source}$`), dirs: pattern.split("/").length };
    });
}

/** Whether a path of the repository is left out of the build context (patternmatcher's MatchesOrParentMatches). */
export function ignoredByDocker(patterns: IgnorePattern[], path: string): boolean {
  const parents = posix.dirname(path) === "." ? [] : posix.dirname(path).split("/");
  let matched = false;
  for (const pattern of patterns) {
    let match = pattern.regex.test(path);
    if (!match && parents.length > 0 && pattern.dirs <= parents.length) match = pattern.regex.test(parents.slice(0, pattern.dirs).join("/"));
    if (match) matched = !pattern.exclusion;
  }
  // Without exceptions, BuildKit skips an excluded directory whole, whatever is below it.
  if (!matched && !patterns.some((p) => p.exclusion)) {
    for (let i = 1; i < parents.length + 1 && !matched; i++) matched = patterns.some((p) => p.regex.test(parents.slice(0, i).join("/")));
  }
  return matched;
}

/** The build-context sources the Dockerfile copies that are missing or ignored. */
export function missingFromContext(text: string, ignore: IgnorePattern[], root: string, sample: (dir: string) => string[]): string[] {
  const problems: string[] = [];
  for (const stage of stagesOf(parseDockerfile(text))) {
    for (const instruction of stage.instructions) {
      if ((instruction.keyword !== "COPY" && instruction.keyword !== "ADD") || instruction.flags.from !== undefined) continue;
      for (const source of copyParts(instruction).sources) {
        const path = source.replace(/^\.\//, "").replace(/\/$/, "");
        if (!existsSync(join(root, path))) {
          problems.push(`line ${instruction.line}: ${source} does not exist`);
          continue;
        }
        // A file, or the files of a directory: some of them must reach the context.
        const files = sample(path);
        if (files.length === 0 || files.every((f) => ignoredByDocker(ignore, f))) problems.push(`line ${instruction.line}: ${source} is left out by .dockerignore`);
      }
    }
  }
  return problems;
}
