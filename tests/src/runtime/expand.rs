//! Kubernetes `$(VAR)` expansion (as in `third_party/forked/golang/expansion`): `$(NAME)` becomes the
//! value when NAME is defined and stays literally otherwise; `$$` is an escaped `$`.

/// Expands `$(VAR)` references in `input` using `lookup`.
pub fn expand(input: &str, lookup: impl Fn(&str) -> Option<String>) -> String {
    let chars: Vec<char> = input.chars().collect();
    let mut out = String::with_capacity(input.len());
    let mut i = 0;
    while i < chars.len() {
        if chars[i] == '$' && i + 1 < chars.len() {
            match chars[i + 1] {
                '$' => {
                    out.push('$');
                    i += 2;
                    continue;
                }
                '(' => {
                    if let Some(end) = chars[i + 2..].iter().position(|c| *c == ')') {
                        let name: String = chars[i + 2..i + 2 + end].iter().collect();
                        match lookup(&name) {
                            Some(v) if !name.is_empty() => out.push_str(&v),
                            _ => {
                                out.push_str("$(");
                                out.push_str(&name);
                                out.push(')');
                            }
                        }
                        i += end + 3;
                        continue;
                    }
                    // No closing paren: the rest is literal.
                    out.extend(&chars[i..]);
                    return out;
                }
                _ => {}
            }
        }
        out.push(chars[i]);
        i += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn look(n: &str) -> Option<String> {
        match n {
            "A" => Some("x".into()),
            "EMPTY" => Some(String::new()),
            _ => None,
        }
    }

    #[test]
    fn defined_references_are_replaced_and_undefined_ones_kept() {
        assert_eq!(expand("$(A)-$(B)-$(EMPTY).", look), "x-$(B)-.");
    }

    #[test]
    fn a_double_dollar_escapes_a_reference() {
        assert_eq!(expand("$$(A) $$ $A", look), "$(A) $ $A");
    }

    #[test]
    fn an_unclosed_reference_is_literal() {
        assert_eq!(expand("a$(A", look), "a$(A");
        assert_eq!(expand("end$", look), "end$");
    }
}
