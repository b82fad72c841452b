/**
 * Freezes a configuration all the way down: objects, arrays, Maps and Sets,
 * and whatever they hold. Object.freeze does not stop a Map's set() or a
 * Set's add() (their entries live in internal slots), so each Map and Set is
 * replaced by a read-only copy whose set, add, delete and clear throw a
 * TypeError; the returned value (and any object holding one) carries the copy.
 * Meant for plain data, as a parsed configuration is; cycles are fine.
 */
export function deepFreeze<T>(value: T): T {
  return freeze(value, new WeakMap()) as T;
}

/** `done` maps each object visited to what stands for it once frozen (itself, or a read-only copy). */
function freeze(value: unknown, done: WeakMap<object, unknown>): unknown {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return value;
  if (done.has(value)) return done.get(value);
  if (value instanceof ReadOnlyMap || value instanceof ReadOnlySet) {
    done.set(value, value);
    return value;
  }
  // The copy is registered before it is filled, so that an entry leading back to its collection finds it.
  if (value instanceof Map) {
    const copy = new ReadOnlyMap<unknown, unknown>();
    done.set(value, copy);
    for (const [key, entry] of value) copy.set(freeze(key, done), freeze(entry, done));
    return seal(copy);
  }
  if (value instanceof Set) {
    const copy = new ReadOnlySet<unknown>();
    done.set(value, copy);
    for (const member of value) copy.add(freeze(member, done));
    return seal(copy);
  }
  done.set(value, value);
  const swappable = !Object.isFrozen(value);
  // Data properties only: a getter is not called. A Map or Set found in a
  // property is swapped for its copy, unless the holder was frozen already.
  for (const [key, descriptor] of Object.entries(Object.getOwnPropertyDescriptors(value))) {
    if (!("value" in descriptor)) continue;
    const frozen = freeze(descriptor.value, done);
    if (frozen !== descriptor.value && swappable) (value as Record<string, unknown>)[key] = frozen;
  }
  return Object.freeze(value);
}

/** Collections sealed once filled: until then set/add work, so deepFreeze can fill them. */
const sealed = new WeakSet<object>();
const refuse = (): never => {
  throw new TypeError("the configuration is read-only");
};

function seal<C extends object>(collection: C): C {
  sealed.add(collection);
  return Object.freeze(collection);
}

class ReadOnlyMap<K, V> extends Map<K, V> {
  override set(key: K, value: V): this {
    if (sealed.has(this)) refuse();
    return super.set(key, value);
  }
  override delete(): boolean {
    return refuse();
  }
  override clear(): void {
    refuse();
  }
}

class ReadOnlySet<T> extends Set<T> {
  override add(value: T): this {
    if (sealed.has(this)) refuse();
    return super.add(value);
  }
  override delete(): boolean {
    return refuse();
  }
  override clear(): void {
    refuse();
  }
}
