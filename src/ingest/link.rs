//! The HTTP `Link` header (RFC 8288 §3): the links of every `Link` field of an answer, whether
//! the server sends one field per link (as Okta does) or joins them with commas.
//!
//! Written here rather than taken from a crate: the ones available split on `,` or key links by
//! the whole `rel` string, which breaks on commas inside `<…>` and on `rel="next last"`.

/// One link of a `Link` header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Link {
    /// The target as written between `<` and `>` (a URI reference, possibly relative).
    pub target: String,
    /// The relation types of its first `rel` parameter (a space-separated list), lower case.
    pub rels: Vec<String>,
}

/// The target of the first link whose relation types include `rel` (case-insensitive), across
/// all `fields` (the values of every `Link` header field, in order).
pub fn find<'a>(
    fields: impl IntoIterator<Item = &'a str>,
    rel: &str,
) -> Result<Option<String>, String> {
    for field in fields {
        for link in parse(field)? {
            if link.rels.iter().any(|r| r.eq_ignore_ascii_case(rel)) {
                return Ok(Some(link.target));
            }
        }
    }
    Ok(None)
}

/// Every link of one `Link` field value: `<target>; param=value; …, <target>; …`.
pub fn parse(field: &str) -> Result<Vec<Link>, String> {
    let mut links = Vec::new();
    let mut rest = field;
    loop {
        // `#link-value` lists may have empty elements and whitespace around commas.
        rest = rest.trim_start_matches(|c: char| c == ',' || is_ows(c));
        if rest.is_empty() {
            return Ok(links);
        }
        let Some(after_open) = rest.strip_prefix('<') else {
            return Err(format!("a link must start with `<`: `{field}`"));
        };
        // The target ends at the first `>`: a URI reference cannot contain one, but may
        // contain `,` and `;`.
        let Some(close) = after_open.find('>') else {
            return Err(format!("a link target has no closing `>`: `{field}`"));
        };
        let target = after_open[..close].trim().to_owned();
        rest = &after_open[close + 1..];
        let mut rels = None;
        loop {
            rest = rest.trim_start_matches(is_ows);
            match rest.chars().next() {
                None | Some(',') => break,
                Some(';') => {
                    let (name, value, after) = parameter(&rest[1..], field)?;
                    rest = after;
                    // RFC 8288 §3.3: only the first `rel` counts.
                    if name.eq_ignore_ascii_case("rel") && rels.is_none() {
                        rels = Some(
                            value
                                .split_ascii_whitespace()
                                .map(str::to_ascii_lowercase)
                                .collect(),
                        );
                    }
                }
                Some(other) => {
                    return Err(format!(
                        "unexpected `{other}` after a link's target or parameter: `{field}`"
                    ))
                }
            }
        }
        links.push(Link {
            target,
            rels: rels.unwrap_or_default(),
        });
    }
}

/// One `name[=value]` parameter (after its `;`): the name, the value (unquoted) and what
/// follows it.
fn parameter<'a>(text: &'a str, field: &str) -> Result<(&'a str, String, &'a str), String> {
    let text = text.trim_start_matches(is_ows);
    let name_end = text.find(|c: char| !is_token_char(c)).unwrap_or(text.len());
    let name = &text[..name_end];
    if name.is_empty() {
        return Err(format!("a link parameter has no name: `{field}`"));
    }
    let rest = text[name_end..].trim_start_matches(is_ows);
    let Some(rest) = rest.strip_prefix('=') else {
        return Ok((name, String::new(), rest));
    };
    let rest = rest.trim_start_matches(is_ows);
    if let Some(quoted) = rest.strip_prefix('"') {
        let mut value = String::new();
        let mut chars = quoted.char_indices();
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => return Ok((name, value, &quoted[i + 1..])),
                '\\' => match chars.next() {
                    Some((_, escaped)) => value.push(escaped),
                    None => break,
                },
                c => value.push(c),
            }
        }
        return Err(format!("a quoted link parameter is not closed: `{field}`"));
    }
    let value_end = rest.find(|c: char| !is_token_char(c)).unwrap_or(rest.len());
    Ok((name, rest[..value_end].to_owned(), &rest[value_end..]))
}

fn is_ows(c: char) -> bool {
    c == ' ' || c == '\t'
}

/// RFC 9110 `tchar`: what a token (a parameter name or an unquoted value) may contain.
fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SELF: &str = "https://acme.okta.com/api/v1/logs?limit=2&after=1";
    const NEXT: &str = "https://acme.okta.com/api/v1/logs?limit=2&after=2";

    fn next(fields: &[&str]) -> Option<String> {
        find(fields.iter().copied(), "next").unwrap()
    }

    #[test]
    fn the_next_link_is_found_in_separate_fields() {
        let fields = [
            format!("<{SELF}>; rel=\"self\""),
            format!("<{NEXT}>; rel=\"next\""),
        ];
        let fields: Vec<&str> = fields.iter().map(String::as_str).collect();
        assert_eq!(next(&fields).as_deref(), Some(NEXT));
        assert_eq!(next(&fields[..1]), None, "a self link alone has no next");
    }

    #[test]
    fn the_next_link_is_found_in_one_comma_joined_field() {
        let field = format!("<{SELF}>; rel=\"self\", <{NEXT}>; rel=\"next\"");
        assert_eq!(next(&[&field]).as_deref(), Some(NEXT));
        let reversed = format!("<{NEXT}>;rel=next,<{SELF}>;rel=self");
        assert_eq!(next(&[&reversed]).as_deref(), Some(NEXT));
    }

    #[test]
    fn parameters_may_come_in_any_order_and_rel_unquoted_or_in_any_case() {
        let field = format!(
            "<{SELF}>; type=\"application/json\"; rel=self, <{NEXT}>; title=\"page; 2, more\"; REL=Next"
        );
        let links = parse(&field).unwrap();
        assert_eq!(
            links,
            vec![
                Link {
                    target: SELF.into(),
                    rels: vec!["self".into()]
                },
                Link {
                    target: NEXT.into(),
                    rels: vec!["next".into()]
                },
            ]
        );
    }

    #[test]
    fn a_rel_may_list_several_relation_types() {
        let field = format!("<{SELF}>; rel=\"self first\", <{NEXT}>; rel=\"last  next\"");
        assert_eq!(next(&[&field]).as_deref(), Some(NEXT));
        assert_eq!(
            find([field.as_str()], "first").unwrap().as_deref(),
            Some(SELF)
        );
    }

    #[test]
    fn commas_and_semicolons_inside_the_target_do_not_split_it() {
        let odd = "https://acme.okta.com/api/v1/logs?filter=a,b;c&after=3";
        let field = format!("<{odd}>; rel=\"next\", <{SELF}>; rel=\"self\"");
        assert_eq!(next(&[&field]).as_deref(), Some(odd));
    }

    #[test]
    fn only_the_first_rel_parameter_counts() {
        let field = format!("<{SELF}>; rel=\"self\"; rel=\"next\"");
        assert_eq!(next(&[&field]), None);
    }

    #[test]
    fn a_malformed_field_is_an_error_not_a_guess() {
        for bad in [
            "https://x/a; rel=next",
            "<https://x/a; rel=next",
            "<https://x/a>; rel=\"next",
            "<https://x/a> rel=next",
            "<https://x/a>; =next",
        ] {
            assert!(find([bad], "next").is_err(), "{bad}");
        }
        assert_eq!(parse("").unwrap(), vec![], "an empty field has no links");
        assert_eq!(
            parse(" , <https://x/a> ,").unwrap(),
            vec![Link {
                target: "https://x/a".into(),
                rels: vec![]
            }],
            "empty list elements are allowed"
        );
    }
}
