import { watch, type FSWatcher } from "node:fs";
import { basename, dirname } from "node:path";

/**
 * Calls `onChange` (debounced) when any of `files` changes. It watches their
 * directories, not the files: Kubernetes updates a mounted ConfigMap or Secret
 * by swapping a symlink, which a watch on the old file never sees.
 */
export function watchFiles(files: readonly string[], onChange: () => void, debounceMs = 250): () => void {
  const names = new Map<string, Set<string>>();
  for (const file of files) {
    const dir = dirname(file);
    if (!names.has(dir)) names.set(dir, new Set());
    names.get(dir)!.add(basename(file));
  }
  let timer: NodeJS.Timeout | undefined;
  const trigger = () => {
    clearTimeout(timer);
    timer = setTimeout(onChange, debounceMs);
  };
  const watchers: FSWatcher[] = [];
  for (const [dir, watched] of names) {
    try {
      const watcher = watch(dir, (_event, name) => {
        // "..data" is the symlink Kubernetes swaps; a null name means "something changed".
        if (name === null || watched.has(name) || name === "..data") trigger();
      });
      watcher.on("error", () => {});
      watchers.push(watcher);
    } catch {
      // An unwatchable directory still reloads on SIGHUP.
    }
  }
  return () => {
    clearTimeout(timer);
    for (const watcher of watchers) watcher.close();
  };
}
