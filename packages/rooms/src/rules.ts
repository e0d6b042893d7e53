/**
 * The room-version rules as this package reads them, and the spec's rule numbering.
 *
 * Every behaviour that changes between room versions reads a flag from the room-version
 * table of `@myelin/types`.
 *
 * @module
 */

import type { AuthRuleFlags, RoomVersionRules } from "@myelin/types";

/** One numbered rule (or group of rules) in the authorisation-rule list. */
interface RuleNode {
  readonly name: string;
  /** Whether the rule exists in a room version; numbering skips absent rules. */
  readonly when?: (flags: AuthRuleFlags) => boolean;
  readonly children?: readonly RuleNode[];
}

const rule = (
  name: string,
  children?: readonly RuleNode[],
  when?: (flags: AuthRuleFlags) => boolean,
): RuleNode => ({
  name,
  ...(children === undefined ? {} : { children }),
  ...(when === undefined ? {} : { when }),
});

/**
 * The authorisation rules in spec order (room versions 1-12). Numbers are positions among the
 * rules present in a room version, so "5.3.5.2" in v12 is "4.3.5.2" in v8-v11, as the spec
 * numbers them. One quirk is kept on purpose: in v12 the spec drops rule 3.4 but keeps 3.5,
 * so the "no create event" slot stays (it simply never fires there).
 */
const RULE_TREE: readonly RuleNode[] = [
  rule("create", [
    rule("prev_events"),
    rule("room_id"),
    rule("room_version"),
    rule("creator", undefined, (f) => !f.implicitRoomCreator),
    rule("additional_creators", undefined, (f) => f.privilegedCreators),
    rule("allow"),
  ]),
  rule("room_id", undefined, (f) => f.privilegedCreators),
  rule("auth_events", [
    rule("duplicate"),
    rule("unexpected"),
    rule("rejected"),
    rule("no_create"),
    rule("wrong_room"),
  ]),
  rule("federate"),
  rule("aliases", [rule("no_state_key"), rule("wrong_domain"), rule("allow")], (f) => f.specialCaseAliases),
  rule("member", [
    rule("malformed"),
    rule("authorising_signature", undefined, (f) => f.restrictedJoins),
    rule("join", [
      rule("creator"),
      rule("not_self"),
      rule("banned"),
      rule("invite_rule"),
      rule(
        "restricted",
        [rule("already_in"), rule("authoriser_invalid"), rule("allow")],
        (f) => f.restrictedJoins,
      ),
      rule("public"),
      rule("otherwise"),
    ]),
    rule("invite", [
      rule("third_party", [
        rule("target_banned"),
        rule("no_signed"),
        rule("no_mxid_or_token"),
        rule("mxid_mismatch"),
        rule("no_invite_event"),
        rule("sender_mismatch"),
        rule("signature_valid"),
        rule("otherwise"),
      ]),
      rule("sender_not_joined"),
      rule("target_joined_or_banned"),
      rule("power"),
      rule("otherwise"),
    ]),
    rule("leave", [
      rule("self"),
      rule("sender_not_joined"),
      rule("unban_power"),
      rule("kick_power"),
      rule("otherwise"),
    ]),
    rule("ban", [rule("sender_not_joined"), rule("power"), rule("otherwise")]),
    rule(
      "knock",
      [rule("join_rule"), rule("not_self"), rule("allow"), rule("otherwise")],
      (f) => f.knocking,
    ),
    rule("unknown"),
  ]),
  rule("sender_not_joined"),
  rule("third_party_invite", [rule("power")]),
  rule("required_power"),
  rule("state_key_user"),
  rule("power_levels", [
    rule("scalar_types", undefined, (f) => f.integerPowerLevels),
    rule("map_types", undefined, (f) => f.integerPowerLevels),
    rule("users"),
    rule("creators_in_users", undefined, (f) => f.privilegedCreators),
    rule("no_previous"),
    rule("scalars", [rule("old_too_high"), rule("new_too_high")]),
    rule("map_removed", [rule("old_too_high")]),
    rule("map_added", [rule("new_too_high")]),
    rule("users_removed", [rule("old_too_high")]),
    rule("users_added", [rule("new_too_high")]),
    rule("allow"),
  ]),
  rule(
    "redaction",
    [rule("power"), rule("same_domain"), rule("otherwise")],
    (f) => f.redactionDomainCheck,
  ),
  rule("otherwise"),
];

/** Every rule name, dotted (`"member.join.restricted.authoriser_invalid"`). */
export type RuleName = string;

const numberings = new WeakMap<AuthRuleFlags, ReadonlyMap<RuleName, string>>();

function numbering(flags: AuthRuleFlags): ReadonlyMap<RuleName, string> {
  let map = numberings.get(flags);
  if (map === undefined) {
    const built = new Map<RuleName, string>();
    const walk = (nodes: readonly RuleNode[], prefix: string, numberPrefix: string): void => {
      let position = 0;
      for (const node of nodes) {
        if (node.when !== undefined && !node.when(flags)) continue;
        position++;
        const name = prefix === "" ? node.name : `${prefix}.${node.name}`;
        const number = numberPrefix === "" ? String(position) : `${numberPrefix}.${position}`;
        built.set(name, number);
        if (node.children !== undefined) walk(node.children, name, number);
      }
    };
    walk(RULE_TREE, "", "");
    map = built;
    numberings.set(flags, map);
  }
  return map;
}

/**
 * The spec's number for a rule in a room version (e.g. `"5.3.5.2"` for
 * `"member.join.restricted.authoriser_invalid"` in room version 12), or `undefined` when the
 * rule does not exist in that version.
 */
export function ruleNumber(rules: RoomVersionRules, name: RuleName): string | undefined {
  return numbering(rules.auth).get(name);
}

/** All rule names that exist in a room version, in spec order, with their numbers. */
export function listRules(rules: RoomVersionRules): ReadonlyMap<RuleName, string> {
  return numbering(rules.auth);
}
