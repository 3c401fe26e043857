//! Constrained mode's JSON schema: what a grammar-based server (llama.cpp, vLLM's guided
//! decoding, Ollama's `format`) is given so the model can only write a valid tool call or a final
//! answer.
//!
//! Owns turning the offered tools' input schemas into one self-contained schema every such server
//! accepts: local `$ref`s inlined (a schema nested under the wrapper can no longer reach its own
//! `$defs`), `oneOf` as `anyOf`, constants as `enum`, `null` alternatives dropped (an optional
//! property is left out instead), value bounds and prose (`minimum`, `description`, `default`…)
//! left out (the host validates every call against the tool's full schema anyway), and each
//! object's properties ordered required first, each group in the schema's own order: grammar
//! servers make the model write properties in schema order, so `name` comes before `arguments`
//! and `old_string` before `new_string`. What each server takes was checked against its source:
//! llama.cpp's json-schema-to-grammar (b11434), vLLM 0.33 (xgrammar first, llguidance as its
//! fallback; `response_format` becomes its structured-output parameters) and Ollama (its OpenAI
//! layer passes the schema on as `format`, to the llama.cpp it embeds).
//! Must not decide whether constrained mode is on, or know the request's wire format.

use crate::conversation::ToolDef;
use serde_json::{Map, Value, json};

/// The pseudo-tool a constrained reply uses to finish with an answer in text.
pub const FINAL_ANSWER: &str = "final_answer";

/// How deep `$ref`s are followed; a recursive schema is cut there (any value is allowed below).
const MAX_REF_DEPTH: usize = 8;

/// One alternative per tool, `{"name": <that tool>, "arguments": <its input>}` with `name`
/// first, plus `final_answer` with a `text`.
pub fn response_schema(tools: &[ToolDef]) -> Value {
    let mut options: Vec<Value> = tools
        .iter()
        .map(|t| call(&t.name, simplify(&t.input_schema, &t.input_schema, 0)))
        .collect();
    options.push(call(
        FINAL_ANSWER,
        json!({"type": "object", "properties": {"text": {"type": "string"}}, "required": ["text"], "additionalProperties": false}),
    ));
    json!({ "anyOf": options })
}

fn call(name: &str, arguments: Value) -> Value {
    // Built key by key: this order is what the grammar makes the model write.
    let mut props = Map::new();
    props.insert("name".into(), json!({"type": "string", "enum": [name]}));
    props.insert("arguments".into(), arguments);
    let mut o = Map::new();
    o.insert("type".into(), "object".into());
    o.insert("properties".into(), Value::Object(props));
    o.insert("required".into(), json!(["name", "arguments"]));
    o.insert("additionalProperties".into(), false.into());
    Value::Object(o)
}

/// `schema` (a part of `root`) with its `$ref`s resolved against `root` and only the keywords
/// that shape the output kept.
fn simplify(schema: &Value, root: &Value, depth: usize) -> Value {
    let Some(obj) = schema.as_object() else {
        // `true`, `false` or garbage: anything goes (the host validates the call).
        return json!({});
    };
    if let Some(r) = obj.get("$ref").and_then(Value::as_str) {
        let target = r
            .strip_prefix('#')
            .and_then(|pointer| root.pointer(pointer))
            .filter(|_| depth < MAX_REF_DEPTH);
        return match target {
            Some(t) => simplify(t, root, depth + 1),
            None => json!({}),
        };
    }
    let mut out = Map::new();
    let alternatives = obj
        .get("anyOf")
        .or_else(|| obj.get("oneOf"))
        .and_then(Value::as_array);
    if let Some(alts) = alternatives {
        let alts: Vec<Value> = alts
            .iter()
            .map(|a| simplify(a, root, depth))
            .filter(|a| a.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        // All constants: one enum, which every grammar handles and reads shorter.
        let consts: Option<Vec<Value>> = alts
            .iter()
            .map(|a| match a.get("enum").and_then(Value::as_array) {
                Some(e) if a.as_object().is_some_and(|o| o.len() <= 2) => Some(e.clone()),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .map(|v| v.into_iter().flatten().collect());
        return match (consts, alts.len()) {
            (_, 0) => json!({}),
            (_, 1) => alts.into_iter().next().unwrap_or_else(|| json!({})),
            (Some(values), _) => enum_of(values),
            (None, _) => json!({ "anyOf": alts }),
        };
    }
    if let Some(c) = obj.get("const") {
        return enum_of(vec![c.clone()]);
    }
    if let Some(t) = obj.get("type") {
        let t = match t {
            Value::Array(types) => {
                let kept: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
                match kept.len() {
                    0 => Value::from("null"),
                    1 => kept[0].clone(),
                    _ => Value::Array(kept),
                }
            }
            other => other.clone(),
        };
        out.insert("type".into(), t);
    }
    if let Some(e) = obj.get("enum").and_then(Value::as_array) {
        let kept: Vec<Value> = e.iter().filter(|v| !v.is_null()).cloned().collect();
        out.insert("enum".into(), Value::Array(kept));
    }
    if let Some(items) = obj.get("items") {
        out.insert("items".into(), simplify(items, root, depth));
    }
    if let Some(props) = obj.get("properties").and_then(Value::as_object) {
        let required: Vec<&str> = obj
            .get("required")
            .and_then(Value::as_array)
            .map(|r| r.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        let is_required = |k: &str| required.contains(&k);
        let mut ordered = Map::new();
        for (k, v) in props.iter().filter(|(k, _)| is_required(k)) {
            ordered.insert(k.clone(), simplify(v, root, depth));
        }
        for (k, v) in props.iter().filter(|(k, _)| !is_required(k)) {
            ordered.insert(k.clone(), simplify(v, root, depth));
        }
        let required: Vec<Value> = props
            .keys()
            .filter(|k| is_required(k))
            .map(|k| Value::from(k.as_str()))
            .collect();
        if ordered.is_empty() {
            // No arguments: `{}` and only that. Said as a constant because llama.cpp builds from
            // before its fix of 2026-09 (issue 25923; Ollama embeds one) write a grammar they
            // cannot parse for an object with no properties, refusing the whole request.
            // xgrammar and llguidance (vLLM) accept either form.
            return json!({"enum": [{}]});
        }
        out.insert("properties".into(), Value::Object(ordered));
        if !required.is_empty() {
            out.insert("required".into(), Value::Array(required));
        }
        out.insert("additionalProperties".into(), false.into());
    }
    Value::Object(out)
}

fn enum_of(values: Vec<Value>) -> Value {
    if values.iter().all(Value::is_string) {
        json!({"type": "string", "enum": values})
    } else {
        json!({ "enum": values })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(v: &Value) -> Vec<&str> {
        v.as_object()
            .map(|o| o.keys().map(String::as_str).collect())
            .unwrap_or_default()
    }

    #[test]
    fn refs_are_inlined_and_properties_come_required_first_in_schema_order()
    -> Result<(), serde_json::Error> {
        let schema: Value = serde_json::from_str(
            r##"{"$defs":{"Mode":{"oneOf":[{"const":"content","description":"x","type":"string"},{"const":"count","type":"string"}]}},
            "type":"object","additionalProperties":false,
            "properties":{"path":{"type":["string","null"]},"pattern":{"type":"string","description":"re"},
            "mode":{"$ref":"#/$defs/Mode","description":"m"},"n":{"type":["integer","null"],"minimum":0},
            "old_string":{"type":"string"},"new_string":{"type":"string"}},
            "required":["pattern","old_string","new_string"]}"##,
        )?;
        let tools = vec![ToolDef {
            name: "grep".into(),
            description: "d".into(),
            input_schema: schema,
        }];
        let s = response_schema(&tools);
        let text = s.to_string();
        assert!(!text.contains("$ref") && !text.contains("$defs"), "{text}");
        assert!(
            !text.contains("null") && !text.contains("minimum"),
            "{text}"
        );
        let grep = &s["anyOf"][0];
        assert_eq!(keys(&grep["properties"]), ["name", "arguments"]);
        assert_eq!(grep["properties"]["name"]["enum"], json!(["grep"]));
        let args = &grep["properties"]["arguments"];
        assert_eq!(
            keys(&args["properties"]),
            ["pattern", "old_string", "new_string", "path", "mode", "n"]
        );
        assert_eq!(
            args["required"],
            json!(["pattern", "old_string", "new_string"])
        );
        assert_eq!(
            args["properties"]["mode"],
            json!({"type":"string","enum":["content","count"]})
        );
        assert_eq!(args["properties"]["n"], json!({"type":"integer"}));
        assert_eq!(s["anyOf"][1]["properties"]["name"]["enum"][0], FINAL_ANSWER);
        Ok(())
    }

    #[test]
    fn a_tool_without_arguments_takes_exactly_an_empty_object() {
        let schema = json!({"type":"object","properties":{},"additionalProperties":false});
        assert_eq!(simplify(&schema, &schema, 0), json!({"enum": [{}]}));
        // Without `properties` at all it stays any object, as the tool said.
        let open = json!({"type":"object"});
        assert_eq!(simplify(&open, &open, 0), json!({"type":"object"}));
    }

    #[test]
    fn a_recursive_or_dangling_ref_becomes_any_value() {
        let schema = json!({"$defs":{"Node":{"type":"object","properties":{"next":{"$ref":"#/$defs/Node"}}}},
            "type":"object","properties":{"root":{"$ref":"#/$defs/Node"},"gone":{"$ref":"#/$defs/Missing"},"ext":{"$ref":"other.json"}}});
        let s = simplify(&schema, &schema, 0);
        assert_eq!(s["properties"]["gone"], json!({}));
        assert_eq!(s["properties"]["ext"], json!({}));
        let mut node = &s["properties"]["root"];
        let mut depth = 0;
        while let Some(next) = node.get("properties").and_then(|p| p.get("next")) {
            node = next;
            depth += 1;
        }
        assert_eq!(depth, MAX_REF_DEPTH);
    }
}
