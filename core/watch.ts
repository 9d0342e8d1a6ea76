import { watch, type FSWatcher } from 'node:fs';
import { basename, dirname } from 'node:path';

/**
 * --watch: calls `onChange` (debounced) when one of a set of files changes. It watches
 * their folders, not the files, because editors often replace a file instead of writing
 * it in place, and a watch on the old file would see nothing after the first save.
 */
export class FileWatch {
  readonly #onChange: () => void;
  readonly #debounceMs: number;
  /** Folder -> its watcher and the names in it that count. */
  #dirs = new Map<string, { watcher: FSWatcher; names: Set<string> }>();
  #timer: NodeJS.Timeout | null = null;

  constructor(onChange: () => void, debounceMs = 100) {
    this.#onChange = onChange;
    this.#debounceMs = debounceMs;
  }

  /** Watches exactly these files from now on (a reload may add or drop plugin files). */
  set(files: Iterable<string>): void {
    const wanted = new Map<string, Set<string>>();
    for (const f of files) {
      const dir = dirname(f);
      let names = wanted.get(dir);
      if (names === undefined) wanted.set(dir, (names = new Set()));
      names.add(basename(f));
    }
    for (const [dir, entry] of this.#dirs) {
      if (!wanted.has(dir)) {
        entry.watcher.close();
        this.#dirs.delete(dir);
      }
    }
    for (const [dir, names] of wanted) {
      const entry = this.#dirs.get(dir);
      if (entry !== undefined) {
        entry.names = names;
        continue;
      }
      try {
        const watcher = watch(dir, (_event, name) => {
          const current = this.#dirs.get(dir);
          if (current !== undefined && (name === null || current.names.has(name))) this.#changed();
        });
        watcher.on('error', () => undefined); // a folder removed under us: the next set() drops it
        watcher.unref();
        this.#dirs.set(dir, { watcher, names });
      } catch {
        /* the folder is gone: nothing in it can change */
      }
    }
  }

  close(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    for (const { watcher } of this.#dirs.values()) watcher.close();
    this.#dirs.clear();
  }

  #changed(): void {
    if (this.#timer !== null) clearTimeout(this.#timer);
    this.#timer = setTimeout(() => {
      this.#timer = null;
      this.#onChange();
    }, this.#debounceMs);
    this.#timer.unref();
  }
}
