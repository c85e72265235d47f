/**
 * The one ordering the engine relies on: Unicode code-point order of (Company ID, Group ID). PostgreSQL gives the
 * same order with `COLLATE "C"` on a UTF-8 database (byte order of UTF-8 is code-point order). JavaScript's `<` on
 * strings compares UTF-16 code units, which differs for characters above U+FFFF, hence this function.
 */

/** Compares two strings by code point: negative, zero or positive. */
export function compareCodePoints(a: string, b: string): number {
  if (a === b) return 0;
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const x = a.charCodeAt(i);
    const y = b.charCodeAt(i);
    if (x !== y) return fixup(x) - fixup(y);
  }
  return a.length - b.length;
}

// Moves surrogates (U+D800–U+DFFF, the halves of characters above U+FFFF) above U+E000–U+FFFF, so that UTF-16 unit
// order becomes code-point order (the classic fix-up used by ICU's u_strCompare in code point order).
function fixup(unit: number): number {
  if (unit >= 0xd800) return unit >= 0xe000 ? unit - 0x800 : unit + 0x2000;
  return unit;
}

/** A group's key within one sync: the Group Key is constant, so (Company ID, Group ID) identifies a profile. */
export interface GroupKey {
  /** Empty string when the destination is not hierarchical. */
  readonly companyId: string;
  readonly groupId: string;
  /**
   * Not part of the key (never compared, never stored): the mapping's `user_id` value of the row, carried along so
   * that the operations built for this group can name the user (Segment). Absent for keys read from state.
   */
  readonly userId?: string;
}

export function compareKeys(a: GroupKey, b: GroupKey): number {
  return compareCodePoints(a.companyId, b.companyId) || compareCodePoints(a.groupId, b.groupId);
}

/** A readable form of a key for logs and reject files. */
export function formatKey(key: GroupKey): string {
  return key.companyId === "" ? key.groupId : `${key.companyId}/${key.groupId}`;
}
