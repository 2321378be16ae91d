//! Writing a JSON value as YAML, byte for byte as serde_yaml 0.9.34 wrote it.
//!
//! `render -o yaml`, `diff` and Tera's `to_yaml` filter print YAML, and where a template embeds
//! `to_yaml` text in a string those bytes become part of an object and of its digest. Earlier
//! releases wrote them with serde_yaml 0.9, which is deprecated; no maintained emitter writes the
//! same bytes (serde-saphyr's emitter double-quotes, folds long lines and quotes YAML 1.1 words), so this
//! module reproduces the two layers serde_yaml had:
//!
//! - serde_yaml's choice of a style per string ([`requested_style`]): a string with a line break
//!   asks for a literal block; a string that would read back as null, a boolean or a number asks
//!   for single quotes; anything else asks for nothing in particular.
//! - libyaml's emitter (as translated in unsafe-libyaml 0.2.11, `src/emitter.rs`), which has the
//!   last word: [`Analysis`] is `yaml_emitter_analyze_scalar`, [`Emitter::select_style`] is
//!   `yaml_emitter_select_scalar_style`, and the writers keep libyaml's column, indentation and
//!   "whitespace"/"indention" bookkeeping, on which its line breaks depend. serde_yaml set an
//!   unlimited line width (nothing is folded) and Unicode output (printable non-ASCII characters
//!   are written as they are).
//!
//! A JSON value needs only part of libyaml: no tags, no anchors, one document, and flow style
//! only for empty collections (`[]`, `{}`), so no scalar is ever written inside a flow
//! collection. `tools/yaml-compat` on the `yaml-writer` branch compared this module with
//! serde_yaml over public repositories and random values; the tests below hold serde_yaml's own
//! output for each rule.

use serde_json::{Map, Value};

/// Writes `value` as one YAML document, ending with a line break.
pub(crate) fn to_string(value: &Value) -> String {
    let mut emitter = Emitter {
        out: String::new(),
        indent: -1,
        indents: Vec::new(),
        column: 0,
        whitespace: true,
        indention: true,
    };
    emitter.node(value, Context::Other);
    // The implicit document end. serde_yaml never ended the stream, so libyaml never wrote the
    // `...` it writes there after a block scalar that keeps its trailing breaks (`|+`).
    emitter.write_indent();
    emitter.out
}

/// The style serde_yaml asked libyaml for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Requested {
    /// Null, booleans and numbers.
    Plain,
    /// A string that would read back as something else.
    SingleQuoted,
    /// Any other string without a line feed: libyaml decides.
    Any,
    /// A string with a line feed.
    Literal,
}

/// The style libyaml writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Style {
    Plain,
    SingleQuoted,
    DoubleQuoted,
    Literal,
}

/// Where a node is written, as far as libyaml's choices depend on it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Context {
    /// A key written as `key:` (single line, at most 128 bytes).
    SimpleKey,
    /// A mapping's value, or a key written after `? `.
    Mapping,
    /// The document's root or a sequence item.
    Other,
}

/// serde_yaml's `serialize_str`: the style asked for a string.
fn requested_style(text: &str) -> Requested {
    if text.contains('\n') {
        Requested::Literal
    } else if reads_as_other_than_string(text) {
        Requested::SingleQuoted
    } else {
        Requested::Any
    }
}

/// Whether serde_yaml would read `text`, written plain, as null, a boolean or a number, or it
/// is digits with a leading zero (`0755`, which YAML 1.1 readers take for an octal number).
fn reads_as_other_than_string(text: &str) -> bool {
    matches!(text, "" | "~" | "null" | "Null" | "NULL")
        || matches!(text, "true" | "True" | "TRUE" | "false" | "False" | "FALSE")
        || parse_unsigned(text, u64::from_str_radix).is_some()
        || parse_negative(text, i64::from_str_radix).is_some()
        || parse_unsigned(text, u128::from_str_radix).is_some()
        || parse_negative(text, i128::from_str_radix).is_some()
        || parses_as_float(text)
        || digits_but_not_number(text)
}

type FromStrRadix<T> = fn(&str, u32) -> Result<T, std::num::ParseIntError>;

/// serde_yaml's `parse_unsigned_int`: `0x`, `0o`, `0b` and decimal, with an optional `+`.
fn parse_unsigned<T>(text: &str, from_str_radix: FromStrRadix<T>) -> Option<T> {
    let unpositive = text.strip_prefix('+').unwrap_or(text);
    for (prefix, radix) in [("0x", 16), ("0o", 8), ("0b", 2)] {
        if let Some(rest) = unpositive.strip_prefix(prefix) {
            if rest.starts_with(['+', '-']) {
                return None;
            }
            if let Ok(int) = from_str_radix(rest, radix) {
                return Some(int);
            }
        }
    }
    if unpositive.starts_with(['+', '-']) || digits_but_not_number(text) {
        return None;
    }
    from_str_radix(unpositive, 10).ok()
}

/// serde_yaml's `parse_negative_int`: `-0x`, `-0o`, `-0b` and signed decimal.
fn parse_negative<T>(text: &str, from_str_radix: FromStrRadix<T>) -> Option<T> {
    for (prefix, radix) in [("-0x", 16), ("-0o", 8), ("-0b", 2)] {
        if let Some(rest) = text.strip_prefix(prefix) {
            if let Ok(int) = from_str_radix(&format!("-{rest}"), radix) {
                return Some(int);
            }
        }
    }
    if digits_but_not_number(text) {
        return None;
    }
    from_str_radix(text, 10).ok()
}

/// serde_yaml's `parse_f64`: `.inf`, `.nan` in their spellings, or what Rust reads as a finite
/// `f64` (so `1e3` and `.5`, but not `inf` or `1e400`).
fn parses_as_float(text: &str) -> bool {
    let unpositive = match text.strip_prefix('+') {
        Some(rest) if rest.starts_with(['+', '-']) => return false,
        Some(rest) => rest,
        None => text,
    };
    matches!(unpositive, ".inf" | ".Inf" | ".INF")
        || matches!(text, "-.inf" | "-.Inf" | "-.INF" | ".nan" | ".NaN" | ".NAN")
        || unpositive.parse::<f64>().is_ok_and(f64::is_finite)
}

/// serde_yaml's `digits_but_not_number`: a leading zero followed by digits only, after an
/// optional sign.
fn digits_but_not_number(text: &str) -> bool {
    let digits = text.strip_prefix(['-', '+']).unwrap_or(text);
    digits.len() > 1 && digits.starts_with('0') && digits[1..].bytes().all(|b| b.is_ascii_digit())
}

/// libyaml's line breaks: CR, LF, NEL, LS and PS.
fn is_break(c: char) -> bool {
    matches!(c, '\r' | '\n' | '\u{85}' | '\u{2028}' | '\u{2029}')
}

/// libyaml's `IS_BLANKZ`: blank, break, NUL or the end of the text (`None`).
fn is_blankz(c: Option<char>) -> bool {
    c.is_none_or(|c| matches!(c, ' ' | '\t' | '\0') || is_break(c))
}

/// libyaml's `IS_PRINTABLE`: what may be written outside double quotes.
fn is_printable(c: char) -> bool {
    matches!(c, '\n' | ' '..='~' | '\u{A0}'..='\u{D7FF}' | '\u{10000}'..)
        || (('\u{E000}'..='\u{FFFD}').contains(&c) && c != '\u{FEFF}')
}

/// What libyaml's `yaml_emitter_analyze_scalar` finds in a scalar, reduced to what a block
/// context needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Analysis {
    multiline: bool,
    block_plain_allowed: bool,
    single_quoted_allowed: bool,
    block_allowed: bool,
}

impl Analysis {
    fn of(text: &str) -> Analysis {
        if text.is_empty() {
            return Analysis {
                multiline: false,
                block_plain_allowed: true,
                single_quoted_allowed: true,
                block_allowed: false,
            };
        }
        let mut block_indicators = text.starts_with("---") || text.starts_with("...");
        let (mut line_breaks, mut special_characters) = (false, false);
        let (mut break_space, mut space_break) = (false, false);
        let (mut previous_space, mut previous_break) = (false, false);
        let mut preceded_by_whitespace = true;
        for (i, c) in text.char_indices() {
            let followed_by_whitespace = is_blankz(text[i + c.len_utf8()..].chars().next());
            if i == 0 {
                if "#,[]{}&*!|>'\"%@`".contains(c)
                    || (matches!(c, '?' | ':' | '-') && followed_by_whitespace)
                {
                    block_indicators = true;
                }
            } else if (c == ':' && followed_by_whitespace) || (c == '#' && preceded_by_whitespace) {
                block_indicators = true;
            }
            if !is_printable(c) {
                special_characters = true;
            }
            if c == ' ' {
                break_space |= previous_break;
                (previous_space, previous_break) = (true, false);
            } else if is_break(c) {
                line_breaks = true;
                space_break |= previous_space;
                (previous_space, previous_break) = (false, true);
            } else {
                (previous_space, previous_break) = (false, false);
            }
            preceded_by_whitespace = is_blankz(Some(c));
        }
        let is_space_or_break = |c: char| c == ' ' || is_break(c);
        let trailing_space = text.ends_with(' ');
        let edge_whitespace =
            text.starts_with(is_space_or_break) || text.ends_with(is_space_or_break);
        let unquotable = space_break || special_characters;
        Analysis {
            multiline: line_breaks,
            block_plain_allowed: !(edge_whitespace
                || break_space
                || unquotable
                || line_breaks
                || block_indicators),
            single_quoted_allowed: !(break_space || unquotable),
            block_allowed: !(trailing_space || unquotable),
        }
    }
}

/// libyaml's emitter state, for one document in block style.
struct Emitter {
    out: String,
    /// The current indentation; -1 before the first collection.
    indent: i32,
    indents: Vec<i32>,
    /// Characters (not bytes) since the last line break.
    column: usize,
    /// Whether the last character written was whitespace (or nothing was written yet).
    whitespace: bool,
    /// Whether only indentation and indicators like `-` are on this line so far.
    indention: bool,
}

impl Emitter {
    fn node(&mut self, value: &Value, context: Context) {
        match value {
            Value::Null => self.scalar("null", Requested::Plain, context),
            Value::Bool(true) => self.scalar("true", Requested::Plain, context),
            Value::Bool(false) => self.scalar("false", Requested::Plain, context),
            Value::Number(number) => match number.as_f64().filter(|_| number.is_f64()) {
                // ryu, as serde_yaml: `1e-7`, `1e20`; serde_json's own text would be `1e+20`.
                Some(float) => {
                    let mut buffer = ryu::Buffer::new();
                    self.scalar(buffer.format_finite(float), Requested::Plain, context)
                }
                None => self.scalar(&number.to_string(), Requested::Plain, context),
            },
            Value::String(text) => self.scalar(text, requested_style(text), context),
            Value::Array(items) => self.sequence(items, context),
            Value::Object(entries) => self.mapping(entries),
        }
    }

    fn sequence(&mut self, items: &[Value], context: Context) {
        if items.is_empty() {
            return self.empty_flow_collection("[", "]");
        }
        // A sequence that is a mapping's value starts on the key's column ("indentless").
        self.increase_indent(false, context == Context::Mapping && !self.indention);
        for item in items {
            self.write_indent();
            self.write_indicator("-", true, false, true);
            self.node(item, Context::Other);
        }
        self.decrease_indent();
    }

    fn mapping(&mut self, entries: &Map<String, Value>) {
        if entries.is_empty() {
            return self.empty_flow_collection("{", "}");
        }
        self.increase_indent(false, false);
        for (key, value) in entries {
            self.write_indent();
            if !key.contains(is_break) && key.len() <= 128 {
                self.scalar(key, requested_style(key), Context::SimpleKey);
                self.write_indicator(":", false, false, false);
            } else {
                self.write_indicator("?", true, false, true);
                self.scalar(key, requested_style(key), Context::Mapping);
                self.write_indent();
                self.write_indicator(":", true, false, true);
            }
            self.node(value, Context::Mapping);
        }
        self.decrease_indent();
    }

    fn empty_flow_collection(&mut self, open: &str, close: &str) {
        self.write_indicator(open, true, true, false);
        self.increase_indent(true, false);
        self.decrease_indent();
        self.write_indicator(close, false, false, false);
    }

    fn scalar(&mut self, text: &str, requested: Requested, context: Context) {
        let style = Self::select_style(requested, &Analysis::of(text), text, context);
        self.increase_indent(true, false);
        match style {
            Style::Plain => self.write_plain(text),
            Style::SingleQuoted => self.write_single_quoted(text),
            Style::DoubleQuoted => self.write_double_quoted(text),
            Style::Literal => self.write_literal(text),
        }
        self.decrease_indent();
    }

    /// `yaml_emitter_select_scalar_style` outside flow collections, for untagged scalars.
    fn select_style(
        requested: Requested,
        analysis: &Analysis,
        text: &str,
        context: Context,
    ) -> Style {
        let simple_key = context == Context::SimpleKey;
        let mut style = match requested {
            Requested::Plain | Requested::Any => Style::Plain,
            Requested::SingleQuoted => Style::SingleQuoted,
            Requested::Literal => Style::Literal,
        };
        if simple_key && analysis.multiline {
            style = Style::DoubleQuoted;
        }
        if style == Style::Plain
            && (!analysis.block_plain_allowed || (text.is_empty() && simple_key))
        {
            style = Style::SingleQuoted;
        }
        if style == Style::SingleQuoted && !analysis.single_quoted_allowed {
            style = Style::DoubleQuoted;
        }
        if style == Style::Literal && (!analysis.block_allowed || simple_key) {
            style = Style::DoubleQuoted;
        }
        style
    }

    fn increase_indent(&mut self, flow: bool, indentless: bool) {
        self.indents.push(self.indent);
        if self.indent < 0 {
            self.indent = if flow { 2 } else { 0 };
        } else if !indentless {
            self.indent += 2;
        }
    }

    fn decrease_indent(&mut self) {
        self.indent = self.indents.pop().unwrap_or(-1);
    }

    fn put(&mut self, c: char) {
        self.out.push(c);
        self.column += 1;
    }

    fn put_break(&mut self) {
        self.out.push('\n');
        self.column = 0;
    }

    /// libyaml's `WRITE_BREAK`: a line feed is written as the configured break (also a line
    /// feed); other breaks are copied as they are.
    fn write_break(&mut self, c: char) {
        if c == '\n' {
            self.put_break();
        } else {
            self.out.push(c);
            self.column = 0;
        }
    }

    fn write_indent(&mut self) {
        let indent = usize::try_from(self.indent).unwrap_or(0);
        if !self.indention || self.column > indent || (self.column == indent && !self.whitespace) {
            self.put_break();
        }
        while self.column < indent {
            self.put(' ');
        }
        self.whitespace = true;
        self.indention = true;
    }

    fn write_indicator(
        &mut self,
        indicator: &str,
        need_whitespace: bool,
        is_whitespace: bool,
        is_indention: bool,
    ) {
        if need_whitespace && !self.whitespace {
            self.put(' ');
        }
        for c in indicator.chars() {
            self.put(c);
        }
        self.whitespace = is_whitespace;
        self.indention = self.indention && is_indention;
    }

    fn write_plain(&mut self, text: &str) {
        if !self.whitespace && !text.is_empty() {
            self.put(' ');
        }
        self.write_lines(text, None);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_single_quoted(&mut self, text: &str) {
        self.write_indicator("'", true, false, false);
        if self.write_lines(text, Some('\'')) {
            self.write_indent();
        }
        self.write_indicator("'", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    /// The text of a plain or single-quoted scalar; libyaml's loops for the two are the same
    /// but for doubling the quote. Spaces are written as they are (the width is unlimited, so
    /// nothing folds); a run of breaks gets one more line feed if it starts with one, and the
    /// line after it is indented. Returns whether the text ended in breaks.
    fn write_lines(&mut self, text: &str, quote: Option<char>) -> bool {
        let mut breaks = false;
        for c in text.chars() {
            if c == ' ' {
                self.put(c);
            } else if is_break(c) {
                if !breaks && c == '\n' {
                    self.put_break();
                }
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                if Some(c) == quote {
                    self.put(c);
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
        breaks
    }

    fn write_double_quoted(&mut self, text: &str) {
        self.write_indicator("\"", true, false, false);
        for c in text.chars() {
            if !is_printable(c) || c == '\u{FEFF}' || is_break(c) || c == '"' || c == '\\' {
                self.put('\\');
                match c {
                    '\0' => self.put('0'),
                    '\u{7}' => self.put('a'),
                    '\u{8}' => self.put('b'),
                    '\t' => self.put('t'),
                    '\n' => self.put('n'),
                    '\u{B}' => self.put('v'),
                    '\u{C}' => self.put('f'),
                    '\r' => self.put('r'),
                    '\u{1B}' => self.put('e'),
                    '"' => self.put('"'),
                    '\\' => self.put('\\'),
                    '\u{85}' => self.put('N'),
                    '\u{A0}' => self.put('_'),
                    '\u{2028}' => self.put('L'),
                    '\u{2029}' => self.put('P'),
                    _ => {
                        let code = u32::from(c);
                        let escaped = match code {
                            0..=0xFF => format!("x{code:02X}"),
                            0x100..=0xFFFF => format!("u{code:04X}"),
                            _ => format!("U{code:08X}"),
                        };
                        escaped.chars().for_each(|c| self.put(c));
                    }
                }
            } else {
                self.put(c);
            }
        }
        self.write_indicator("\"", false, false, false);
        self.whitespace = false;
        self.indention = false;
    }

    fn write_literal(&mut self, text: &str) {
        self.write_indicator("|", true, false, false);
        self.write_block_scalar_hints(text);
        self.put_break();
        self.indention = true;
        self.whitespace = true;
        let mut breaks = true;
        for c in text.chars() {
            if is_break(c) {
                self.write_break(c);
                self.indention = true;
                breaks = true;
            } else {
                if breaks {
                    self.write_indent();
                }
                self.put(c);
                self.indention = false;
                breaks = false;
            }
        }
    }

    /// The indentation hint (when the text starts with a space or a break) and the chomping
    /// hint: `-` without a final break, none for one, `+` for more (or a text that is one break).
    fn write_block_scalar_hints(&mut self, text: &str) {
        if text.starts_with(|c: char| c == ' ' || is_break(c)) {
            self.write_indicator("2", false, false, false);
        }
        let mut from_end = text.chars().rev();
        let chomp = match (from_end.next(), from_end.next()) {
            (None, _) => Some("-"),
            (Some(last), _) if !is_break(last) => Some("-"),
            (Some(_), None) => Some("+"),
            (Some(_), Some(before)) if is_break(before) => Some("+"),
            _ => None,
        };
        if let Some(chomp) = chomp {
            self.write_indicator(chomp, false, false, false);
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]

    use super::*;

    /// JSON values and the bytes serde_yaml 0.9.34 wrote for them, printed by serde_yaml itself
    /// (`tools/yaml-compat/examples/table.rs` on the `yaml-writer` branch). One row per rule:
    /// quoting of what reads as another type, indicators, whitespace and breaks, escapes,
    /// literal blocks and their hints, keys (empty, multi-line, over 128 bytes), empty and
    /// nested collections, floats, root scalars.
    const AS_SERDE_YAML_WROTE: &[(&str, &str)] = &[
        ("{\"null\":null,\"t\":true,\"f\":false,\"int\":-42,\"u\":18446744073709551615,\"i\":-9223372036854775808}", "'null': null\nt: true\nf: false\nint: -42\nu: 18446744073709551615\ni: -9223372036854775808\n"),
        ("[0.1,1e-7,1e+20,1e+16,1000000000000000.0,123456.789,-0.0,0.000025,1.0]", "- 0.1\n- 1e-7\n- 1e20\n- 1e16\n- 1000000000000000.0\n- 123456.789\n- -0.0\n- 0.000025\n- 1.0\n"),
        ("[\"\",\"~\",\"null\",\"Null\",\"true\",\"False\",\"yes\",\"on\",\"0x1F\",\"0o17\",\"0b11\",\"+12\",\"-0x1A\",\"1e3\",\".5\",\"5.\",\".inf\",\"-.Inf\",\".NaN\",\"inf\",\"nan\",\"1e400\",\"0755\",\"-007\",\"1_000\",\"2001-12-14\",\"340282366920938463463374607431768211456\"]", "- ''\n- '~'\n- 'null'\n- 'Null'\n- 'true'\n- 'False'\n- yes\n- on\n- '0x1F'\n- '0o17'\n- '0b11'\n- '+12'\n- '-0x1A'\n- '1e3'\n- '.5'\n- '5.'\n- '.inf'\n- '-.Inf'\n- '.NaN'\n- inf\n- nan\n- 1e400\n- '0755'\n- '-007'\n- 1_000\n- 2001-12-14\n- '340282366920938463463374607431768211456'\n"),
        ("[\"#a\",\"a #b\",\"a#b\",\",a\",\"[a\",\"]\",\"{a\",\"}\",\"&a\",\"*a\",\"!a\",\"|a\",\">a\",\"'a\",\"\\\"a\",\"%a\",\"@a\",\"`a\",\"?a\",\"? a\",\":a\",\": a\",\"a:b\",\"a: b\",\"a:\",\"-a\",\"- a\",\"-\",\"---\",\"--- a\",\"...\",\"a---\"]", "- '#a'\n- 'a #b'\n- a#b\n- ',a'\n- '[a'\n- ']'\n- '{a'\n- '}'\n- '&a'\n- '*a'\n- '!a'\n- '|a'\n- '>a'\n- '''a'\n- '\"a'\n- '%a'\n- '@a'\n- '`a'\n- ?a\n- '? a'\n- :a\n- ': a'\n- a:b\n- 'a: b'\n- 'a:'\n- -a\n- '- a'\n- '-'\n- '---'\n- '--- a'\n- '...'\n- a---\n"),
        ("[\" a\",\"a \",\"a  b\",\"a\\tb\",\"\\ta\",\"a\u{85}b\",\"a\u{2028}b\",\"a \u{2028}b\",\"a\u{2028} b\",\"\u{2028}\",\"a\\rb\",\"\\u0000\",\"a\u{7f}\",\"\\u001b\",\"\u{feff}a\",\"a\u{a0}b\",\"\u{a0}\",\"\u{9f}\",\"é\",\"😀\",\"\u{fffe}\",\"\u{10ffff}\",\"\u{d7ff}\u{e000}\",\"it's\",\"\\\\\",\"a\\\"b\"]", "- ' a'\n- 'a '\n- a  b\n- \"a\\tb\"\n- \"\\ta\"\n- \"a\\Nb\"\n- 'a\u{2028}  b'\n- \"a \\Lb\"\n- \"a\\L b\"\n- '\u{2028}  '\n- \"a\\rb\"\n- \"\\0\"\n- \"a\\x7F\"\n- \"\\e\"\n- \"\\uFEFFa\"\n- a\u{a0}b\n- \u{a0}\n- \"\\x9F\"\n- é\n- 😀\n- \"\\uFFFE\"\n- \u{10ffff}\n- \u{d7ff}\u{e000}\n- it's\n- \\\n- a\"b\n"),
        ("{\"script\":\"#!/bin/sh\\necho hi\\n\",\"strip\":\"a\\nb\",\"keep\":\"a\\n\\n\",\"one\":\"\\n\",\"lead\":\" a\\nb\\n\",\"leadbreak\":\"\\na\",\"trail\":\"a \\nb\",\"tab\":\"a\\tb\\n\",\"nel\":\"a\u{85}\\nb\",\"ls\":\"a\u{2028}\\nb\",\"crlf\":\"a\\r\\nb\",\"spacebreak\":\"a\\n b\\n\"}", "script: |\n  #!/bin/sh\n  echo hi\nstrip: |-\n  a\n  b\nkeep: |+\n  a\n\none: |2+\n\nlead: |2\n   a\n  b\nleadbreak: |2-\n\n  a\ntrail: \"a \\nb\"\ntab: \"a\\tb\\n\"\nnel: \"a\\N\\nb\"\nls: |-\n  a\u{2028}\n  b\ncrlf: \"a\\r\\nb\"\nspacebreak: |\n  a\n   b\n"),
        ("{\"a\\nb\":1,\"\":\"\",\"x\":{\"a b\":{}},\"y\":[],\"z\":{},\"\\n\":[1],\"'\":\"'\"}", "? |-\n  a\n  b\n: 1\n'': ''\nx:\n  a b: {}\ny: []\nz: {}\n? |2+\n\n: - 1\n'''': ''''\n"),
        ("{\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\":[1,2],\"kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\":{\"a\":1},\"ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé\":\"x\"}", "? kkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk\n: - 1\n  - 2\nkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkkk:\n  a: 1\n? ééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééééé\n: x\n"),
        ("{\"spec\":{\"containers\":[{\"name\":\"a\",\"args\":[\"--x\",\"- y\"],\"env\":[{\"name\":\"A\",\"value\":\"1\"}]}],\"empty\":[[],{}],\"nested\":[[1,[2,3]],{\"k\":[{\"m\":null}]}]}}", "spec:\n  containers:\n  - name: a\n    args:\n    - --x\n    - '- y'\n    env:\n    - name: A\n      value: '1'\n  empty:\n  - []\n  - {}\n  nested:\n  - - 1\n    - - 2\n      - 3\n  - k:\n    - m: null\n"),
        ("[[{\"a\":1,\"b\":[2]}],[\"x\\ny\",{\"c\":\"d\\n\"}]]", "- - a: 1\n    b:\n    - 2\n- - |-\n    x\n    y\n  - c: |\n      d\n"),
        ("\"just text\"", "just text\n"),
        ("\"\"", "''\n"),
        ("\"line\\n\"", "|\n  line\n"),
        ("\" lead\\n\"", "|2\n   lead\n"),
        ("12", "12\n"),
        ("null", "null\n"),
        ("[]", "[]\n"),
        ("{}", "{}\n"),
        ("{\"? key\":1,\"- key\":2,\"key:\":3,\"[k]\":4,\"k #\":5}", "'? key': 1\n'- key': 2\n'key:': 3\n'[k]': 4\n'k #': 5\n"),
        ("{\"trailing\":\"a\\nb \",\"breaktrail\":\"a\\nb\\n \",\"k\":\"a\\n\\n\\nb\\n\\n\"}", "trailing: \"a\\nb \"\nbreaktrail: \"a\\nb\\n \"\nk: |+\n  a\n\n\n  b\n\n"),
    ];

    #[test]
    fn writes_what_serde_yaml_wrote() {
        let mut wrong = Vec::new();
        for (json, expected) in AS_SERDE_YAML_WROTE {
            let value: Value = serde_json::from_str(json).unwrap();
            let written = to_string(&value);
            if written != *expected {
                wrong.push(format!(
                    "{json}\n  serde_yaml: {expected:?}\n  now:        {written:?}"
                ));
            }
        }
        assert!(
            wrong.is_empty(),
            "{} of {} differ:\n{}",
            wrong.len(),
            AS_SERDE_YAML_WROTE.len(),
            wrong.join("\n")
        );
    }

    /// A small xorshift generator, so the values are the same on every run.
    struct Values(u64);

    impl Values {
        fn below(&mut self, n: usize) -> usize {
            self.0 ^= self.0 << 13;
            self.0 ^= self.0 >> 7;
            self.0 ^= self.0 << 17;
            (self.0 % n as u64) as usize
        }

        fn string(&mut self) -> String {
            const PIECES: &[&str] = &[
                " ", "\n", "\r", "\t", ":", "#", "-", "?", "'", "\"", "\\", "a", "0", "1", ".",
                "e", "+", "\u{85}", "\u{FEFF}", "\u{A0}", "\0", "\u{7f}", "é", "😀", "\u{FFFE}",
                "[", "{", "!", "&", "*", "|", ">", "%", "@", "`", ",", "0x", "---", "...", "~",
                "null", "true", "yes", "1e3", "0755",
            ];
            (0..self.below(7))
                .map(|_| PIECES[self.below(PIECES.len())])
                .collect()
        }

        fn value(&mut self, depth: usize) -> Value {
            match self.below(if depth > 3 { 4 } else { 7 }) {
                0 => Value::Null,
                1 => serde_json::json!((self.below(4000) as f64 - 2000.0) / 16.0),
                2 | 3 => Value::String(self.string()),
                4 => Value::Array((0..self.below(4)).map(|_| self.value(depth + 1)).collect()),
                _ => Value::Object(
                    (0..self.below(4))
                        .map(|_| {
                            let key = if self.below(8) == 0 {
                                "k".repeat(127 + self.below(3))
                            } else {
                                self.string()
                            };
                            (key, self.value(depth + 1))
                        })
                        .collect(),
                ),
            }
        }
    }

    /// What is written reads back as the value it was written from, for 20,000 values built
    /// from the characters and words each rule is about.
    #[test]
    fn reads_back_what_it_wrote() {
        let mut values = Values(0x9E37_79B9_7F4A_7C15);
        for _ in 0..20_000 {
            let value = values.value(0);
            let written = to_string(&value);
            let read: Value = crate::yaml::from_str(&written).unwrap_or_else(|e| {
                panic!("{value} was written as {written:?}, which reads as an error: {e}")
            });
            assert_eq!(read, value, "written as {written:?}");
        }
    }

    #[test]
    fn the_style_asked_for_a_string_is_serde_yamls() {
        assert_eq!(requested_style("a\nb"), Requested::Literal);
        for quoted in [
            "", "~", "NULL", "True", "0x1F", "-0o17", "+12", "1e3", ".5", "-.INF", "0755", "-007",
        ] {
            assert_eq!(
                requested_style(quoted),
                Requested::SingleQuoted,
                "{quoted:?}"
            );
        }
        // Not numbers to serde_yaml: YAML 1.1 words, Rust's own `inf`, out-of-range floats.
        for any in [
            "yes",
            "on",
            "inf",
            "nan",
            "1e400",
            "1_000",
            "0x",
            "+-1",
            "0x+1",
            "2001-12-14",
        ] {
            assert_eq!(requested_style(any), Requested::Any, "{any:?}");
        }
    }
}
