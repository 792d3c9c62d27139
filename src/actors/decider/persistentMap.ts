import { HashMap, Option } from "effect"

/**
 * A read-only Map whose updates return a new map sharing structure with the old one (Effect's
 * HAMT underneath): O(log n) per `with`/`without` instead of copying. State must stay immutable
 * for replay and `inspect --at`, and copying a map of every user or every update of the last
 * 25 h on each event made handling and replay quadratic.
 */
export class PersistentMap<K, V> implements ReadonlyMap<K, V> {
  private constructor(private readonly map: HashMap.HashMap<K, V>) {}

  static empty<K, V>(): PersistentMap<K, V> {
    return new PersistentMap(HashMap.empty<K, V>())
  }

  static from<K, V>(entries: Iterable<readonly [K, V]>): PersistentMap<K, V> {
    return new PersistentMap(HashMap.fromIterable(entries as Iterable<readonly [K, V]>))
  }

  get size(): number {
    return HashMap.size(this.map)
  }
  get(key: K): V | undefined {
    return Option.getOrUndefined(HashMap.get(this.map, key))
  }
  has(key: K): boolean {
    return HashMap.has(this.map, key)
  }
  with(key: K, value: V): PersistentMap<K, V> {
    return new PersistentMap(HashMap.set(this.map, key, value))
  }
  without(key: K): PersistentMap<K, V> {
    return this.has(key) ? new PersistentMap(HashMap.remove(this.map, key)) : this
  }
  filter(keep: (value: V, key: K) => boolean): PersistentMap<K, V> {
    return new PersistentMap(HashMap.filter(this.map, keep))
  }
  forEach(fn: (value: V, key: K, map: ReadonlyMap<K, V>) => void): void {
    for (const [k, v] of this) fn(v, k, this)
  }
  *entries(): MapIterator<[K, V]> {
    for (const [k, v] of this.map) yield [k, v]
  }
  *keys(): MapIterator<K> {
    for (const [k] of this.map) yield k
  }
  *values(): MapIterator<V> {
    for (const [, v] of this.map) yield v
  }
  [Symbol.iterator](): MapIterator<[K, V]> {
    return this.entries()
  }
}
