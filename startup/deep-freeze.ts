/**
 * Freezes a configuration all the way down: objects, arrays, Maps and Sets,
 * and whatever they hold. Object.freeze does not stop a Map's set() or a
 * Set's add() (their entries live in internal slots), so each Map and Set is
 * replaced by a read-only copy whose set, add, delete and clear throw a
 * TypeError; the returned value (and any object holding one) carries the copy.
 * Meant for plain data, as a parsed configuration is; cycles are fine.
 */
export function deepFreeze<T>(value: T): T {
  return freeze(value, new Map()) as T;
}

/**
 * `done` maps each object visited to what stands for it once frozen (itself,
 * or a read-only copy). A Map rather than a WeakMap, and one property read at
 * a time rather than all descriptors at once: a 1,000-tenant configuration
 * holds some 100,000 objects, and this is what kept freezing it under 100 ms
 * (issue 11).
 */
function freeze(value: unknown, done: Map<object, unknown>): unknown {
  if (value === null || (typeof value !== "object" && typeof value !== "function")) return value;
  const visited = done.get(value);
  if (visited !== undefined) return visited;
  if (value instanceof ReadOnlyMap || value instanceof ReadOnlySet) {
    done.set(value, value);
    return value;
  }
  // The copy is registered before it is filled, so that an entry leading back to its collection finds it.
  if (value instanceof Map) {
    const copy = new ReadOnlyMap<unknown, unknown>();
    done.set(value, copy);
    for (const [key, entry] of value) fillMap.call(copy, freeze(key, done), freeze(entry, done));
    return Object.freeze(copy);
  }
  if (value instanceof Set) {
    const copy = new ReadOnlySet<unknown>();
    done.set(value, copy);
    for (const member of value) fillSet.call(copy, freeze(member, done));
    return Object.freeze(copy);
  }
  done.set(value, value);
  const swappable = !Object.isFrozen(value);
  // An array's elements (a list in a configuration has no other properties); an object's own properties, enumerable or not.
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) freezeProperty(value, i, swappable, done);
  } else {
    const keys = Object.getOwnPropertyNames(value);
    for (let i = 0; i < keys.length; i++) freezeProperty(value, keys[i]!, swappable, done);
  }
  return Object.freeze(value);
}

/**
 * Freezes what one property holds. Data properties only: a getter is not
 * called. A Map or Set found is swapped for its copy, unless the holder was
 * frozen already.
 */
function freezeProperty(holder: object, key: string | number, swappable: boolean, done: Map<object, unknown>): void {
  const descriptor = Object.getOwnPropertyDescriptor(holder, key);
  if (descriptor === undefined || !("value" in descriptor)) return;
  const held: unknown = descriptor.value;
  if (held === null || (typeof held !== "object" && typeof held !== "function")) return;
  const frozen = freeze(held, done);
  if (frozen !== held && swappable) (holder as Record<string | number, unknown>)[key] = frozen;
}

const refuse = (): never => {
  throw new TypeError("the configuration is read-only");
};

/** Map.prototype.set and Set.prototype.add themselves: deepFreeze fills the read-only copies with them. */
const fillMap = Map.prototype.set;
const fillSet = Set.prototype.add;

/** A Map whose set, delete and clear throw; deepFreeze fills it through Map.prototype.set before freezing it. */
class ReadOnlyMap<K, V> extends Map<K, V> {
  override set(): this {
    return refuse();
  }
  override delete(): boolean {
    return refuse();
  }
  override clear(): void {
    refuse();
  }
}

/** A Set whose add, delete and clear throw; deepFreeze fills it through Set.prototype.add before freezing it. */
class ReadOnlySet<T> extends Set<T> {
  override add(): this {
    return refuse();
  }
  override delete(): boolean {
    return refuse();
  }
  override clear(): void {
    refuse();
  }
}
