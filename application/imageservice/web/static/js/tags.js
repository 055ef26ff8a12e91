/* A tag as the server stores and matches it: core/text.py's normalise_tag, applied with the rule
   the server publishes (config.tag_rule), so a filter typed here finds what uploads are tagged. */

import { config } from "./config.js";

const RULE = config.tag_rule || {};
const INVISIBLE = new RegExp(RULE.invisible || "[]", "gu");
const SPACES = new RegExp(RULE.spaces || "[]", "gu");

/** ``text`` as one stored tag: normal form, invisible characters gone, each run of spaces one
    space, no space at the ends, lower case. May be "" (no tag). */
export function normaliseTag(text) {
  const spaced = String(text || "").normalize(RULE.normal_form).replace(INVISIBLE, "").replace(SPACES, " ");
  return spaced.replace(/^ | $/g, "").toLowerCase();
}
