import { RequestError } from './errors.js';

/**
 * Who may use a workload name now. A name is its owner's identity (MAC, stable_secret: see
 * identity.ts) and its DNS name (ontap-zone publishes NAME.DOMAIN, and withholds a name two
 * workloads claim), so while one uid's live lease holds a name, no other uid may take it: the
 * first lease wins until it ends. A name the administrator reserved for a uid
 * (ontapd --reserve NAME=UID) is that uid's alone, held or not, so no one can take it first.
 * Root is no exception either way: the rule is about whose workload the name is.
 */
export class NameRegistry {
  /** name -> the uid whose leases hold it, and how many (one uid may run a name twice). */
  private readonly held = new Map<string, { uid: number; leases: number }>();

  constructor(private readonly reserved: ReadonlyMap<string, number> = new Map()) {}

  /** Throws the refusal when `uid` may not use `name` now. */
  check(name: string, uid: number): void {
    const owner = this.reserved.get(name);
    if (owner !== undefined && owner !== uid) {
      throw new RequestError('forbidden', `the name "${name}" is reserved for another user (ontapd --reserve)`, 'name');
    }
    const holder = this.held.get(name);
    if (holder !== undefined && holder.uid !== uid) {
      throw new RequestError('conflict', `the name "${name}" is in use by another user's workload; choose another name`, 'name');
    }
  }

  /** Counts a lease (or an allocation under way) of `uid` holding `name`; check() first. */
  claim(name: string, uid: number): void {
    const holder = this.held.get(name);
    if (holder === undefined) this.held.set(name, { uid, leases: 1 });
    else holder.leases++;
  }

  release(name: string, uid: number): void {
    const holder = this.held.get(name);
    if (holder === undefined || holder.uid !== uid) return;
    if (--holder.leases === 0) this.held.delete(name);
  }
}
