//! WIT value types as JSON: a plain component's function types (`Ty`), the JSON schema of each,
//! JSON arguments to component values (`Val`) and results back to JSON.
//!
//! Owns the one mapping between the two worlds, in both directions, so what the schema promises
//! is what the conversion accepts:
//!
//! | WIT | JSON |
//! |---|---|
//! | `bool`, `string` | boolean, string |
//! | integers | an integer in the type's range (a 64-bit one exactly, also beyond 2^53; a string of digits is taken too) |
//! | `f32`, `f64` | a number; `"NaN"`, `"Infinity"`, `"-Infinity"` for what JSON cannot write |
//! | `char` | a string of exactly one character |
//! | `list<T>`, `tuple<..>`, fixed-length lists | arrays |
//! | `record` | an object with every field (an `option` field may be left out or `null`) |
//! | `variant` | a case without payload as its name; one with payload as `{"case": payload}` |
//! | `enum` | its case's name |
//! | `flags` | an array of the names set |
//! | `option<T>` | `null` or T |
//! | `result<T, E>` | `{"ok": T}` or `{"err": E}` (a function's own result is unwrapped by [`Func::outcome`]) |
//! | `map<K, V>` | an array of `[key, value]` pairs |
//!
//! An `option<option<T>>` cannot say `some(none)`: `null` is the outer `none`.
//!
//! Must not touch a store or call anything: it only converts values (tested without a component).

use serde_json::{Map, Value, json};
use wasmtime::component::Val;

/// A WIT value type, as far as JSON can carry it (no resources, futures or streams).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ty {
    Bool,
    S8,
    U8,
    S16,
    U16,
    S32,
    U32,
    S64,
    U64,
    F32,
    F64,
    Char,
    String,
    List(Box<Ty>),
    FixedList(Box<Ty>, u32),
    Map(Box<Ty>, Box<Ty>),
    Tuple(Vec<Ty>),
    Record(Vec<(String, Ty)>),
    Variant(Vec<(String, Option<Ty>)>),
    Enum(Vec<String>),
    Flags(Vec<String>),
    Option(Box<Ty>),
    Result {
        ok: Option<Box<Ty>>,
        err: Option<Box<Ty>>,
    },
}

/// One exported function of a plain component, offered as one tool.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Func {
    /// The tool's name (what the model calls).
    pub tool: String,
    /// The exported interface holding it (`wasi:example/files@0.1.0`), or none at the top level.
    pub interface: Option<String>,
    /// The function's own name in the component.
    pub name: String,
    pub params: Vec<(String, Ty)>,
    pub result: Option<Ty>,
    /// Its WIT doc comment, when the component carries one.
    pub docs: Option<String>,
}

/// Arguments that do not fit the function's types, naming where.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("argument `{path}`: {message}")]
pub struct ArgError {
    /// `path`, `options.depth`, `items[2]`, `mode.fast`...
    pub path: String,
    pub message: String,
}

/// What a call's result means for the model.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// The answer: a string as it is, anything else as JSON text.
    Ok(String),
    /// The function's own `err`, as text.
    Err(String),
}

impl std::fmt::Display for Ty {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let list =
            |f: &mut std::fmt::Formatter<'_>, items: &[String]| f.write_str(&items.join(", "));
        match self {
            Ty::Bool => f.write_str("bool"),
            Ty::S8 => f.write_str("s8"),
            Ty::U8 => f.write_str("u8"),
            Ty::S16 => f.write_str("s16"),
            Ty::U16 => f.write_str("u16"),
            Ty::S32 => f.write_str("s32"),
            Ty::U32 => f.write_str("u32"),
            Ty::S64 => f.write_str("s64"),
            Ty::U64 => f.write_str("u64"),
            Ty::F32 => f.write_str("f32"),
            Ty::F64 => f.write_str("f64"),
            Ty::Char => f.write_str("char"),
            Ty::String => f.write_str("string"),
            Ty::List(t) => write!(f, "list<{t}>"),
            Ty::FixedList(t, n) => write!(f, "list<{t}, {n}>"),
            Ty::Map(k, v) => write!(f, "map<{k}, {v}>"),
            Ty::Tuple(ts) => {
                f.write_str("tuple<")?;
                list(f, &ts.iter().map(Ty::to_string).collect::<Vec<_>>())?;
                f.write_str(">")
            }
            Ty::Record(fields) => {
                f.write_str("record { ")?;
                list(
                    f,
                    &fields
                        .iter()
                        .map(|(n, t)| format!("{n}: {t}"))
                        .collect::<Vec<_>>(),
                )?;
                f.write_str(" }")
            }
            Ty::Variant(cases) => {
                f.write_str("variant { ")?;
                list(
                    f,
                    &cases
                        .iter()
                        .map(|(n, t)| match t {
                            Some(t) => format!("{n}({t})"),
                            None => n.clone(),
                        })
                        .collect::<Vec<_>>(),
                )?;
                f.write_str(" }")
            }
            Ty::Enum(names) => write!(f, "enum {{ {} }}", names.join(", ")),
            Ty::Flags(names) => write!(f, "flags {{ {} }}", names.join(", ")),
            Ty::Option(t) => write!(f, "option<{t}>"),
            Ty::Result { ok, err } => match (ok, err) {
                (None, None) => f.write_str("result"),
                (Some(ok), None) => write!(f, "result<{ok}>"),
                (None, Some(err)) => write!(f, "result<_, {err}>"),
                (Some(ok), Some(err)) => write!(f, "result<{ok}, {err}>"),
            },
        }
    }
}

impl Func {
    /// `read-file(path: string) -> result<string, string>`.
    pub fn signature(&self) -> String {
        let params: Vec<String> = self
            .params
            .iter()
            .map(|(n, t)| format!("{n}: {t}"))
            .collect();
        let result = self
            .result
            .as_ref()
            .map(|r| format!(" -> {r}"))
            .unwrap_or_default();
        format!("{}({}){result}", self.name, params.join(", "))
    }

    /// What the model is told: the doc comment and the signature, or the signature alone.
    pub fn description(&self) -> String {
        let signature = self.signature();
        let place = self
            .interface
            .as_deref()
            .map(|i| format!(" (in {i})"))
            .unwrap_or_default();
        match self
            .docs
            .as_deref()
            .map(str::trim)
            .filter(|d| !d.is_empty())
        {
            Some(docs) => format!("{docs}\n\nSignature: {signature}{place}"),
            None => format!("{signature}{place}"),
        }
    }

    /// The input schema: one property per parameter, in order; required unless an `option`.
    pub fn input_schema(&self) -> Value {
        object_schema(&self.params)
    }

    /// The call's arguments from the model's input object, in parameter order.
    ///
    /// # Errors
    /// An [`ArgError`] naming the parameter (and the field or item inside it) that does not fit.
    pub fn args(&self, input: &Value) -> Result<Vec<Val>, ArgError> {
        let Value::Object(object) = input else {
            return Err(ArgError {
                path: "(input)".into(),
                message: format!(
                    "expected an object with {}, got {}",
                    self.params
                        .iter()
                        .map(|(n, _)| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", "),
                    kind(input)
                ),
            });
        };
        if let Some(extra) = object
            .keys()
            .find(|k| !self.params.iter().any(|(n, _)| n == *k))
        {
            return Err(ArgError {
                path: extra.clone(),
                message: format!(
                    "`{}` takes no such argument; its arguments are {}",
                    self.name,
                    self.params
                        .iter()
                        .map(|(n, _)| format!("`{n}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            });
        }
        self.params
            .iter()
            .map(|(name, ty)| match object.get(name) {
                Some(v) => to_val(v, ty, name),
                None if matches!(ty, Ty::Option(_)) => Ok(Val::Option(None)),
                None => Err(ArgError {
                    path: name.clone(),
                    message: format!("missing; expected {}", expectation(ty)),
                }),
            })
            .collect()
    }

    /// The type of what the function answers: a `result`'s `ok`, else its return type.
    fn answer_type(&self) -> Option<&Ty> {
        match &self.result {
            Some(Ty::Result { ok, .. }) => ok.as_deref(),
            other => other.as_ref(),
        }
    }

    /// The schema of its structured output: there is one when it answers a record (a JSON
    /// object, which is what MCP's `structuredContent` must be).
    pub fn output_schema(&self) -> Option<Value> {
        match self.answer_type() {
            Some(t @ Ty::Record(_)) => Some(schema(t)),
            _ => None,
        }
    }

    /// The answer as structured output, when the function answers a record (see
    /// [`Func::output_schema`]); its text is the same JSON.
    pub fn structured(&self, results: &[Val]) -> Option<Value> {
        self.output_schema()?;
        let answer = match results {
            [Val::Result(Ok(Some(v)))] => v.as_ref(),
            [Val::Result(_)] => return None,
            [v] => v,
            _ => return None,
        };
        Some(to_json(answer)).filter(Value::is_object)
    }

    /// What the call's results mean: `result` unwrapped into an answer or the function's error,
    /// a string as plain text, anything else as JSON text.
    pub fn outcome(&self, results: &[Val]) -> Outcome {
        match results {
            [] => Outcome::Ok("done (the function returns nothing)".into()),
            [Val::Result(Ok(ok))] => Outcome::Ok(ok.as_deref().map_or_else(String::new, text)),
            [Val::Result(Err(err))] => Outcome::Err(
                err.as_deref()
                    .map_or_else(|| "the function returned an error".into(), text),
            ),
            [one] => Outcome::Ok(text(one)),
            many => Outcome::Ok(Value::Array(many.iter().map(to_json).collect()).to_string()),
        }
    }
}

/// A value as the model reads it: a string as it is, anything else as JSON text.
fn text(v: &Val) -> String {
    match v {
        Val::String(s) => s.clone(),
        other => to_json(other).to_string(),
    }
}

/// An object with one property per field, in order; each required unless an `option`.
fn object_schema(fields: &[(String, Ty)]) -> Value {
    let mut properties = Map::new();
    let mut required = Vec::new();
    for (name, t) in fields {
        properties.insert(name.clone(), schema(t));
        if !matches!(t, Ty::Option(_)) {
            required.push(Value::String(name.clone()));
        }
    }
    json!({
        "type": "object",
        "properties": properties,
        "required": required,
        "additionalProperties": false,
    })
}

/// The JSON schema of a value of type `ty`.
pub fn schema(ty: &Ty) -> Value {
    let int = |min: i64, max: u64| json!({"type": "integer", "minimum": min, "maximum": max});
    match ty {
        Ty::Bool => json!({"type": "boolean"}),
        Ty::S8 => int(i8::MIN.into(), i8::MAX as u64),
        Ty::U8 => int(0, u8::MAX.into()),
        Ty::S16 => int(i16::MIN.into(), i16::MAX as u64),
        Ty::U16 => int(0, u16::MAX.into()),
        Ty::S32 => int(i32::MIN.into(), i32::MAX as u64),
        Ty::U32 => int(0, u32::MAX.into()),
        Ty::S64 => int(i64::MIN, i64::MAX as u64),
        Ty::U64 => int(0, u64::MAX),
        Ty::F32 | Ty::F64 => json!({"type": "number"}),
        Ty::Char => json!({"type": "string", "minLength": 1, "maxLength": 1}),
        Ty::String => json!({"type": "string"}),
        Ty::List(t) => json!({"type": "array", "items": schema(t)}),
        Ty::FixedList(t, n) => {
            json!({"type": "array", "items": schema(t), "minItems": n, "maxItems": n})
        }
        Ty::Map(k, v) => json!({
            "type": "array",
            "items": {
                "type": "array",
                "prefixItems": [schema(k), schema(v)],
                "items": false,
                "minItems": 2,
                "maxItems": 2,
            },
        }),
        Ty::Tuple(ts) => json!({
            "type": "array",
            "prefixItems": ts.iter().map(schema).collect::<Vec<_>>(),
            "items": false,
            "minItems": ts.len(),
            "maxItems": ts.len(),
        }),
        Ty::Record(fields) => object_schema(fields),
        Ty::Variant(cases) => {
            let bare: Vec<&String> = cases
                .iter()
                .filter(|(_, t)| t.is_none())
                .map(|(n, _)| n)
                .collect();
            let mut any: Vec<Value> = Vec::new();
            if !bare.is_empty() {
                any.push(json!({"type": "string", "enum": bare}));
            }
            for (name, t) in cases {
                if let Some(t) = t {
                    any.push(json!({
                        "type": "object",
                        "properties": {name.clone(): schema(t)},
                        "required": [name],
                        "additionalProperties": false,
                    }));
                }
            }
            json!({"anyOf": any})
        }
        Ty::Enum(names) => json!({"type": "string", "enum": names}),
        Ty::Flags(names) => json!({
            "type": "array",
            "items": {"type": "string", "enum": names},
            "uniqueItems": true,
        }),
        Ty::Option(t) => json!({"anyOf": [schema(t), {"type": "null"}]}),
        Ty::Result { ok, err } => {
            let side = |name: &str, t: &Option<Box<Ty>>| {
                let payload = t.as_deref().map_or(json!({"type": "null"}), schema);
                json!({
                    "type": "object",
                    "properties": {name: payload},
                    "required": [name],
                    "additionalProperties": false,
                })
            };
            json!({"oneOf": [side("ok", ok), side("err", err)]})
        }
    }
}

/// What a value of `ty` looks like, for errors.
fn expectation(ty: &Ty) -> String {
    match ty {
        Ty::Bool => "true or false".into(),
        Ty::S8 | Ty::U8 | Ty::S16 | Ty::U16 | Ty::S32 | Ty::U32 | Ty::S64 | Ty::U64 => {
            let (min, max) = int_range(ty);
            format!("an integer from {min} to {max} ({ty})")
        }
        Ty::F32 | Ty::F64 => format!("a number ({ty})"),
        Ty::Char => "a string of exactly one character".into(),
        Ty::String => "a string".into(),
        Ty::List(_) | Ty::Map(..) => format!("an array ({ty})"),
        Ty::FixedList(_, n) => format!("an array of exactly {n} items ({ty})"),
        Ty::Tuple(ts) => format!("an array of exactly {} items ({ty})", ts.len()),
        Ty::Record(fields) => format!(
            "an object with {}",
            fields
                .iter()
                .map(|(n, _)| format!("`{n}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Ty::Variant(cases) => format!(
            "one of: {}",
            cases
                .iter()
                .map(|(n, t)| match t {
                    Some(t) => format!("{{\"{n}\": {}}}", expectation(t)),
                    None => format!("\"{n}\""),
                })
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Ty::Enum(names) => format!(
            "one of {}",
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Ty::Flags(names) => format!(
            "an array of names from {}",
            names
                .iter()
                .map(|n| format!("\"{n}\""))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        Ty::Option(t) => format!("null or {}", expectation(t)),
        Ty::Result { .. } => "{\"ok\": ...} or {\"err\": ...}".into(),
    }
}

fn int_range(ty: &Ty) -> (i128, i128) {
    match ty {
        Ty::S8 => (i8::MIN.into(), i8::MAX.into()),
        Ty::U8 => (0, u8::MAX.into()),
        Ty::S16 => (i16::MIN.into(), i16::MAX.into()),
        Ty::U16 => (0, u16::MAX.into()),
        Ty::S32 => (i32::MIN.into(), i32::MAX.into()),
        Ty::U32 => (0, u32::MAX.into()),
        Ty::S64 => (i64::MIN.into(), i64::MAX.into()),
        _ => (0, u64::MAX.into()),
    }
}

/// The JSON kind of `v`, for errors: `a string "abc"`, `an object`...
fn kind(v: &Value) -> String {
    match v {
        Value::Null => "null".into(),
        Value::Bool(b) => format!("{b}"),
        Value::Number(n) => format!("the number {n}"),
        Value::String(s) => {
            let shown: String = s.chars().take(40).collect();
            let more = if shown.len() < s.len() { "..." } else { "" };
            format!("the string \"{shown}{more}\"")
        }
        Value::Array(a) => format!("an array of {} items", a.len()),
        Value::Object(_) => "an object".into(),
    }
}

/// `v` as a value of type `ty`; `path` names where it is, for errors.
///
/// # Errors
/// An [`ArgError`] at the innermost place that does not fit.
pub fn to_val(v: &Value, ty: &Ty, path: &str) -> Result<Val, ArgError> {
    let wrong = || ArgError {
        path: path.to_string(),
        message: format!("expected {}, got {}", expectation(ty), kind(v)),
    };
    let at = |suffix: String| format!("{path}{suffix}");
    Ok(match ty {
        Ty::Bool => Val::Bool(v.as_bool().ok_or_else(wrong)?),
        Ty::S8 | Ty::U8 | Ty::S16 | Ty::U16 | Ty::S32 | Ty::U32 | Ty::S64 | Ty::U64 => {
            let n = integer(v).ok_or_else(wrong)?;
            let (min, max) = int_range(ty);
            if n < min || n > max {
                return Err(ArgError {
                    path: path.to_string(),
                    message: format!("{n} is out of range: expected {}", expectation(ty)),
                });
            }
            let out = || wrong();
            match ty {
                Ty::S8 => Val::S8(i8::try_from(n).map_err(|_| out())?),
                Ty::U8 => Val::U8(u8::try_from(n).map_err(|_| out())?),
                Ty::S16 => Val::S16(i16::try_from(n).map_err(|_| out())?),
                Ty::U16 => Val::U16(u16::try_from(n).map_err(|_| out())?),
                Ty::S32 => Val::S32(i32::try_from(n).map_err(|_| out())?),
                Ty::U32 => Val::U32(u32::try_from(n).map_err(|_| out())?),
                Ty::S64 => Val::S64(i64::try_from(n).map_err(|_| out())?),
                _ => Val::U64(u64::try_from(n).map_err(|_| out())?),
            }
        }
        Ty::F32 => Val::Float32(float(v).ok_or_else(wrong)? as f32),
        Ty::F64 => Val::Float64(float(v).ok_or_else(wrong)?),
        Ty::Char => {
            let s = v.as_str().ok_or_else(wrong)?;
            let mut chars = s.chars();
            match (chars.next(), chars.next()) {
                (Some(c), None) => Val::Char(c),
                _ => return Err(wrong()),
            }
        }
        Ty::String => Val::String(v.as_str().ok_or_else(wrong)?.to_string()),
        Ty::List(t) => Val::List(items(v, t, path, wrong)?),
        Ty::FixedList(t, n) => {
            let items = items(v, t, path, wrong)?;
            if items.len() != *n as usize {
                return Err(wrong());
            }
            Val::FixedLengthList(items)
        }
        Ty::Map(k, val) => {
            let pairs = v.as_array().ok_or_else(wrong)?;
            let mut out = Vec::with_capacity(pairs.len());
            for (i, pair) in pairs.iter().enumerate() {
                let here = at(format!("[{i}]"));
                match pair.as_array().map(Vec::as_slice) {
                    Some([key, value]) => out.push((
                        to_val(key, k, &format!("{here}[0]"))?,
                        to_val(value, val, &format!("{here}[1]"))?,
                    )),
                    _ => {
                        return Err(ArgError {
                            path: here,
                            message: format!(
                                "expected a [key, value] pair ({k}, {val}), got {}",
                                kind(pair)
                            ),
                        });
                    }
                }
            }
            Val::Map(out)
        }
        Ty::Tuple(ts) => {
            let a = v.as_array().ok_or_else(wrong)?;
            if a.len() != ts.len() {
                return Err(wrong());
            }
            Val::Tuple(
                a.iter()
                    .zip(ts)
                    .enumerate()
                    .map(|(i, (x, t))| to_val(x, t, &at(format!("[{i}]"))))
                    .collect::<Result<_, _>>()?,
            )
        }
        Ty::Record(fields) => {
            let o = v.as_object().ok_or_else(wrong)?;
            if let Some(extra) = o.keys().find(|k| !fields.iter().any(|(n, _)| n == *k)) {
                return Err(ArgError {
                    path: at(format!(".{extra}")),
                    message: format!("no such field; expected {}", expectation(ty)),
                });
            }
            let mut out = Vec::with_capacity(fields.len());
            for (name, t) in fields {
                let here = at(format!(".{name}"));
                let val = match o.get(name) {
                    Some(x) => to_val(x, t, &here)?,
                    None if matches!(t, Ty::Option(_)) => Val::Option(None),
                    None => {
                        return Err(ArgError {
                            path: here,
                            message: format!("missing; expected {}", expectation(t)),
                        });
                    }
                };
                out.push((name.clone(), val));
            }
            Val::Record(out)
        }
        Ty::Variant(cases) => match v {
            Value::String(s) => match cases.iter().find(|(n, _)| n == s) {
                Some((n, None)) => Val::Variant(n.clone(), None),
                Some((n, Some(t))) => {
                    return Err(ArgError {
                        path: path.to_string(),
                        message: format!(
                            "case `{n}` carries a value: write {{\"{n}\": {}}}",
                            expectation(t)
                        ),
                    });
                }
                None => return Err(wrong()),
            },
            Value::Object(o) if o.len() == 1 => {
                let Some((name, payload)) = o.iter().next() else {
                    return Err(wrong());
                };
                match cases.iter().find(|(n, _)| n == name) {
                    Some((n, Some(t))) => Val::Variant(
                        n.clone(),
                        Some(Box::new(to_val(payload, t, &at(format!(".{n}")))?)),
                    ),
                    Some((n, None)) if payload.is_null() => Val::Variant(n.clone(), None),
                    _ => return Err(wrong()),
                }
            }
            _ => return Err(wrong()),
        },
        Ty::Enum(names) => {
            let s = v.as_str().ok_or_else(wrong)?;
            if !names.iter().any(|n| n == s) {
                return Err(wrong());
            }
            Val::Enum(s.to_string())
        }
        Ty::Flags(names) => {
            let a = v.as_array().ok_or_else(wrong)?;
            let mut set: Vec<String> = Vec::with_capacity(a.len());
            for (i, x) in a.iter().enumerate() {
                match x.as_str() {
                    Some(s) if names.iter().any(|n| n == s) => {
                        if !set.iter().any(|n| n == s) {
                            set.push(s.to_string());
                        }
                    }
                    _ => {
                        return Err(ArgError {
                            path: at(format!("[{i}]")),
                            message: format!("expected {}, got {}", expectation(ty), kind(x)),
                        });
                    }
                }
            }
            // In the order the type declares them.
            Val::Flags(names.iter().filter(|n| set.contains(*n)).cloned().collect())
        }
        Ty::Option(t) => match v {
            Value::Null => Val::Option(None),
            x => Val::Option(Some(Box::new(to_val(x, t, path)?))),
        },
        Ty::Result { ok, err } => {
            let o = v.as_object().filter(|o| o.len() == 1).ok_or_else(wrong)?;
            let null = Value::Null;
            let side = |name: &str, t: &Option<Box<Ty>>| -> Result<Option<Box<Val>>, ArgError> {
                let payload = o.get(name).unwrap_or(&null);
                match t {
                    Some(t) => Ok(Some(Box::new(to_val(payload, t, &at(format!(".{name}")))?))),
                    None if payload.is_null() => Ok(None),
                    None => Err(ArgError {
                        path: at(format!(".{name}")),
                        message: format!(
                            "expected null (this side carries no value), got {}",
                            kind(payload)
                        ),
                    }),
                }
            };
            if o.contains_key("ok") {
                Val::Result(Ok(side("ok", ok)?))
            } else if o.contains_key("err") {
                Val::Result(Err(side("err", err)?))
            } else {
                return Err(wrong());
            }
        }
    })
}

/// The elements of an array `v`, each of type `t`.
fn items(
    v: &Value,
    t: &Ty,
    path: &str,
    wrong: impl Fn() -> ArgError,
) -> Result<Vec<Val>, ArgError> {
    v.as_array()
        .ok_or_else(wrong)?
        .iter()
        .enumerate()
        .map(|(i, x)| to_val(x, t, &format!("{path}[{i}]")))
        .collect()
}

/// An integer from a JSON number (exact, the whole 64-bit range) or a string of digits.
fn integer(v: &Value) -> Option<i128> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .map(i128::from)
            .or_else(|| n.as_u64().map(i128::from))
            .or_else(|| {
                // 3.0 is 3; 3.5 and 1e30 are not integers of any WIT type.
                let f = n.as_f64()?;
                (f.fract() == 0.0 && f.abs() < 9.0e15).then_some(f as i128)
            }),
        Value::String(s) => s.trim().parse::<i128>().ok(),
        _ => None,
    }
}

/// A float from a JSON number, or the words JSON has no number for.
fn float(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "Infinity" => Some(f64::INFINITY),
            "-Infinity" => Some(f64::NEG_INFINITY),
            _ => None,
        },
        _ => None,
    }
}

fn float_json(f: f64) -> Value {
    if f.is_nan() {
        json!("NaN")
    } else if f.is_infinite() {
        json!(if f > 0.0 { "Infinity" } else { "-Infinity" })
    } else {
        serde_json::Number::from_f64(f).map_or(Value::Null, Value::Number)
    }
}

/// A component value as JSON, in the mapping the module's table gives.
pub fn to_json(v: &Val) -> Value {
    match v {
        Val::Bool(b) => json!(b),
        Val::S8(n) => json!(n),
        Val::U8(n) => json!(n),
        Val::S16(n) => json!(n),
        Val::U16(n) => json!(n),
        Val::S32(n) => json!(n),
        Val::U32(n) => json!(n),
        Val::S64(n) => json!(n),
        Val::U64(n) => json!(n),
        // The f32's own digits, not the f64 it widens to (0.1f32 is 0.1, not 0.100000001...).
        Val::Float32(f) => {
            if f.is_finite() {
                f.to_string().parse::<f64>().map_or(Value::Null, float_json)
            } else {
                float_json(f64::from(*f))
            }
        }
        Val::Float64(f) => float_json(*f),
        Val::Char(c) => json!(c.to_string()),
        Val::String(s) => json!(s),
        Val::List(items) | Val::Tuple(items) | Val::FixedLengthList(items) => {
            Value::Array(items.iter().map(to_json).collect())
        }
        Val::Map(pairs) => Value::Array(
            pairs
                .iter()
                .map(|(k, v)| Value::Array(vec![to_json(k), to_json(v)]))
                .collect(),
        ),
        Val::Record(fields) => Value::Object(
            fields
                .iter()
                .map(|(n, v)| (n.clone(), to_json(v)))
                .collect(),
        ),
        Val::Variant(name, None) | Val::Enum(name) => json!(name),
        Val::Variant(name, Some(payload)) => json!({name.clone(): to_json(payload)}),
        Val::Option(None) => Value::Null,
        Val::Option(Some(v)) => to_json(v),
        Val::Result(Ok(v)) => json!({"ok": v.as_deref().map_or(Value::Null, to_json)}),
        Val::Result(Err(v)) => json!({"err": v.as_deref().map_or(Value::Null, to_json)}),
        Val::Flags(names) => json!(names),
        // Functions with these types are not offered as tools; say so rather than panic.
        Val::Resource(_) | Val::Future(_) | Val::Stream(_) | Val::ErrorContext(_) => {
            json!("(a resource handle, which cove cannot show)")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type Res = Result<(), Box<dyn std::error::Error>>;

    fn b(t: Ty) -> Box<Ty> {
        Box::new(t)
    }

    fn func(params: Vec<(&str, Ty)>, result: Option<Ty>) -> Func {
        Func {
            tool: "f".into(),
            interface: None,
            name: "f".into(),
            params: params
                .into_iter()
                .map(|(n, t)| (n.to_string(), t))
                .collect(),
            result,
            docs: None,
        }
    }

    /// Every type kind in one record, with a value of each.
    fn everything() -> (Ty, Value) {
        let ty = Ty::Record(vec![
            ("b".into(), Ty::Bool),
            ("s8".into(), Ty::S8),
            ("u8".into(), Ty::U8),
            ("s16".into(), Ty::S16),
            ("u16".into(), Ty::U16),
            ("s32".into(), Ty::S32),
            ("u32".into(), Ty::U32),
            ("s64".into(), Ty::S64),
            ("u64".into(), Ty::U64),
            ("f32".into(), Ty::F32),
            ("f64".into(), Ty::F64),
            ("c".into(), Ty::Char),
            ("s".into(), Ty::String),
            ("l".into(), Ty::List(b(Ty::U32))),
            ("fl".into(), Ty::FixedList(b(Ty::Bool), 2)),
            ("m".into(), Ty::Map(b(Ty::String), b(Ty::S32))),
            ("t".into(), Ty::Tuple(vec![Ty::String, Ty::F64])),
            (
                "v".into(),
                Ty::Variant(vec![("none".into(), None), ("some".into(), Some(Ty::U8))]),
            ),
            ("e".into(), Ty::Enum(vec!["red".into(), "green".into()])),
            ("fg".into(), Ty::Flags(vec!["read".into(), "write".into()])),
            ("o".into(), Ty::Option(b(Ty::String))),
            (
                "r".into(),
                Ty::Result {
                    ok: Some(b(Ty::U32)),
                    err: Some(b(Ty::String)),
                },
            ),
        ]);
        let value = json!({
            "b": true, "s8": -128, "u8": 255, "s16": -2, "u16": 65535, "s32": -7, "u32": 7,
            "s64": i64::MIN, "u64": u64::MAX, "f32": 0.5, "f64": -1.25, "c": "é", "s": "text",
            "l": [1, 2], "fl": [true, false], "m": [["a", 1]], "t": ["x", 2.5],
            "v": {"some": 3}, "e": "green", "fg": ["read", "write"], "o": "here",
            "r": {"err": "no"},
        });
        (ty, value)
    }

    #[test]
    fn every_kind_round_trips_and_fits_its_own_schema() -> Res {
        let (ty, value) = everything();
        let val = to_val(&value, &ty, "x")?;
        assert_eq!(to_json(&val), value);
        let validator = jsonschema::validator_for(&schema(&ty))?;
        assert!(validator.is_valid(&value), "{}", schema(&ty));
        // And the converted value is what wasmtime expects for each kind.
        let Val::Record(fields) = val else {
            return Err("not a record".into());
        };
        let get = |n: &str| fields.iter().find(|(f, _)| f == n).map(|(_, v)| v.clone());
        assert_eq!(get("u64"), Some(Val::U64(u64::MAX)));
        assert_eq!(get("s64"), Some(Val::S64(i64::MIN)));
        assert_eq!(get("c"), Some(Val::Char('é')));
        assert_eq!(
            get("v"),
            Some(Val::Variant("some".into(), Some(Box::new(Val::U8(3)))))
        );
        assert_eq!(get("e"), Some(Val::Enum("green".into())));
        assert_eq!(
            get("fg"),
            Some(Val::Flags(vec!["read".into(), "write".into()]))
        );
        assert_eq!(
            get("r"),
            Some(Val::Result(Err(Some(Box::new(Val::String("no".into()))))))
        );
        assert_eq!(
            get("m"),
            Some(Val::Map(vec![(Val::String("a".into()), Val::S32(1))]))
        );
        Ok(())
    }

    #[test]
    fn every_kind_has_a_signature() {
        let (ty, _) = everything();
        let text = ty.to_string();
        for part in [
            "b: bool",
            "u64: u64",
            "l: list<u32>",
            "fl: list<bool, 2>",
            "m: map<string, s32>",
            "t: tuple<string, f64>",
            "v: variant { none, some(u8) }",
            "e: enum { red, green }",
            "fg: flags { read, write }",
            "o: option<string>",
            "r: result<u32, string>",
        ] {
            assert!(text.contains(part), "{part} not in {text}");
        }
        let f = func(
            vec![("path", Ty::String)],
            Some(Ty::Result {
                ok: Some(b(Ty::String)),
                err: Some(b(Ty::String)),
            }),
        );
        assert_eq!(f.signature(), "f(path: string) -> result<string, string>");
        assert_eq!(f.description(), f.signature());
        let documented = Func {
            docs: Some("Read a file.\n".into()),
            interface: Some("ns:pkg/files@1.0.0".into()),
            ..f
        };
        assert_eq!(
            documented.description(),
            "Read a file.\n\nSignature: f(path: string) -> result<string, string> (in ns:pkg/files@1.0.0)"
        );
    }

    #[test]
    fn u64_and_s64_stay_exact_beyond_two_to_the_53() -> Res {
        let big = (1u64 << 53) + 1;
        assert_eq!(to_val(&json!(big), &Ty::U64, "n")?, Val::U64(big));
        assert_eq!(to_json(&Val::U64(big)), json!(big));
        assert_eq!(to_json(&Val::U64(big)).to_string(), "9007199254740993");
        // Digits in a string are taken too (JSON tools that lose precision send them so).
        assert_eq!(
            to_val(&json!("18446744073709551615"), &Ty::U64, "n")?,
            Val::U64(u64::MAX)
        );
        assert_eq!(
            to_val(&json!(-9_007_199_254_740_993i64), &Ty::S64, "n")?,
            Val::S64(-9_007_199_254_740_993)
        );
        // A float is an integer only when it is one.
        assert_eq!(to_val(&json!(3.0), &Ty::U8, "n")?, Val::U8(3));
        let e = to_val(&json!(3.5), &Ty::U8, "n")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("argument `n`: expected an integer from 0 to 255 (u8), got the number 3.5")
        );
        let e = to_val(&json!(1e30), &Ty::U64, "n")
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("got the number")));
        Ok(())
    }

    #[test]
    fn out_of_range_integers_say_the_range() {
        let e = to_val(&json!(256), &Ty::U8, "size")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("argument `size`: 256 is out of range: expected an integer from 0 to 255 (u8)")
        );
        let e = to_val(&json!(-1), &Ty::U64, "n")
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("out of range")));
        let e = to_val(&json!(u64::MAX), &Ty::S64, "n")
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some_and(|e| e.contains("out of range")));
    }

    #[test]
    fn chars_are_exactly_one_character() -> Res {
        assert_eq!(to_val(&json!("🦀"), &Ty::Char, "c")?, Val::Char('🦀'));
        for bad in [json!(""), json!("ab"), json!(1)] {
            let e = to_val(&bad, &Ty::Char, "c").err().map(|e| e.to_string());
            assert!(
                e.as_ref()
                    .is_some_and(|e| e.contains("exactly one character")),
                "{bad}: {e:?}"
            );
        }
        assert_eq!(to_json(&Val::Char('🦀')), json!("🦀"));
        // The schema agrees: one character, counted as a character and not as bytes.
        let v = jsonschema::validator_for(&schema(&Ty::Char))?;
        assert!(v.is_valid(&json!("🦀")) && !v.is_valid(&json!("ab")));
        Ok(())
    }

    #[test]
    fn floats_that_json_cannot_write_are_words() -> Res {
        assert_eq!(to_json(&Val::Float64(f64::NAN)), json!("NaN"));
        assert_eq!(to_json(&Val::Float32(f32::INFINITY)), json!("Infinity"));
        assert_eq!(
            to_json(&Val::Float64(f64::NEG_INFINITY)),
            json!("-Infinity")
        );
        assert_eq!(to_json(&Val::Float32(0.1)), json!(0.1));
        assert!(matches!(to_val(&json!("NaN"), &Ty::F64, "x")?, Val::Float64(f) if f.is_nan()));
        assert_eq!(
            to_val(&json!("-Infinity"), &Ty::F32, "x")?,
            Val::Float32(f32::NEG_INFINITY)
        );
        let e = to_val(&json!("nan"), &Ty::F64, "x")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("argument `x`: expected a number (f64), got the string \"nan\"")
        );
        Ok(())
    }

    #[test]
    fn flags_are_a_set_of_known_names_in_declared_order() -> Res {
        let ty = Ty::Flags(vec!["read".into(), "write".into(), "exec".into()]);
        assert_eq!(
            to_val(&json!(["exec", "read", "exec"]), &ty, "mode")?,
            Val::Flags(vec!["read".into(), "exec".into()])
        );
        assert_eq!(to_val(&json!([]), &ty, "mode")?, Val::Flags(vec![]));
        let e = to_val(&json!(["read", "delete"]), &ty, "mode")
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some(
                "argument `mode[1]`: expected an array of names from \"read\", \"write\", \"exec\", got the string \"delete\""
            )
        );
        Ok(())
    }

    #[test]
    fn variants_take_a_name_or_a_one_key_object() -> Res {
        let ty = Ty::Variant(vec![("all".into(), None), ("first".into(), Some(Ty::U32))]);
        assert_eq!(
            to_val(&json!("all"), &ty, "v")?,
            Val::Variant("all".into(), None)
        );
        assert_eq!(
            to_val(&json!({"first": 2}), &ty, "v")?,
            Val::Variant("first".into(), Some(Box::new(Val::U32(2))))
        );
        let e = to_val(&json!("first"), &ty, "v")
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_ref()
                .is_some_and(|e| e.contains("case `first` carries a value")),
            "{e:?}"
        );
        let e = to_val(&json!({"first": "x"}), &ty, "v")
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_ref()
                .is_some_and(|e| e.starts_with("argument `v.first`:")),
            "{e:?}"
        );
        let e = to_val(&json!("some"), &ty, "v")
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_ref().is_some_and(|e| e.contains("one of: \"all\"")),
            "{e:?}"
        );
        let v = jsonschema::validator_for(&schema(&ty))?;
        assert!(v.is_valid(&json!("all")) && v.is_valid(&json!({"first": 1})));
        assert!(!v.is_valid(&json!("first")) && !v.is_valid(&json!({"all": 1, "first": 1})));
        Ok(())
    }

    #[test]
    fn errors_name_the_path_through_nested_types() {
        let ty = Ty::Record(vec![(
            "items".into(),
            Ty::List(b(Ty::Record(vec![
                ("name".into(), Ty::String),
                ("size".into(), Ty::Option(b(Ty::U16))),
            ]))),
        )]);
        let f = func(vec![("query", ty)], None);
        let e = f
            .args(&json!({"query": {"items": [{"name": "a"}, {"name": 1}]}}))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("argument `query.items[1].name`: expected a string, got the number 1")
        );
        let e = f
            .args(&json!({"query": {"items": [{"name": "a", "size": -1}]}}))
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_ref().is_some_and(
                |e| e.starts_with("argument `query.items[0].size`: -1 is out of range")
            ),
            "{e:?}"
        );
        let e = f
            .args(&json!({"query": {"items": [{"nmae": "a"}]}}))
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_ref()
                .is_some_and(|e| e.starts_with("argument `query.items[0].nmae`: no such field")),
            "{e:?}"
        );
        let e = f
            .args(&json!({"query": {"items": [{}]}}))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("argument `query.items[0].name`: missing; expected a string")
        );
    }

    #[test]
    fn parameters_are_required_unless_options_and_nothing_else_is_taken() -> Res {
        let f = func(
            vec![("path", Ty::String), ("limit", Ty::Option(b(Ty::U32)))],
            None,
        );
        assert_eq!(
            f.input_schema(),
            json!({
                "type": "object",
                "properties": {
                    "path": {"type": "string"},
                    "limit": {"anyOf": [{"type": "integer", "minimum": 0, "maximum": 4294967295u32}, {"type": "null"}]},
                },
                "required": ["path"],
                "additionalProperties": false,
            })
        );
        // Properties keep the parameters' order.
        let keys: Vec<String> = f.input_schema()["properties"]
            .as_object()
            .map(|o| o.keys().cloned().collect())
            .unwrap_or_default();
        assert_eq!(keys, ["path", "limit"]);
        assert_eq!(
            f.args(&json!({"path": "a"}))?,
            vec![Val::String("a".into()), Val::Option(None)]
        );
        assert_eq!(
            f.args(&json!({"path": "a", "limit": 5}))?,
            vec![
                Val::String("a".into()),
                Val::Option(Some(Box::new(Val::U32(5))))
            ]
        );
        let e = f.args(&json!({})).err().map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("argument `path`: missing; expected a string")
        );
        let e = f
            .args(&json!({"path": "a", "pth": 1}))
            .err()
            .map(|e| e.to_string());
        assert_eq!(
            e.as_deref(),
            Some("argument `pth`: `f` takes no such argument; its arguments are `path`, `limit`")
        );
        let e = f.args(&json!(["a"])).err().map(|e| e.to_string());
        assert!(
            e.as_ref().is_some_and(|e| e.contains("expected an object")),
            "{e:?}"
        );
        Ok(())
    }

    #[test]
    fn results_become_text_or_the_tool_error() {
        let f = func(vec![], None);
        let s = |t: &str| Some(Box::new(Val::String(t.into())));
        assert_eq!(
            f.outcome(&[Val::Result(Ok(s("file\ncontents")))]),
            Outcome::Ok("file\ncontents".into())
        );
        assert_eq!(
            f.outcome(&[Val::Result(Err(s("no such file")))]),
            Outcome::Err("no such file".into())
        );
        assert_eq!(
            f.outcome(&[Val::Result(Ok(Some(Box::new(Val::List(vec![
                Val::String("a".into()),
                Val::String("b".into())
            ])))))]),
            Outcome::Ok(r#"["a","b"]"#.into())
        );
        // A nested result is data, not the call's own failure.
        let nested = Val::Result(Ok(Some(Box::new(Val::Result(Err(s("inner")))))));
        assert_eq!(
            f.outcome(&[nested]),
            Outcome::Ok(r#"{"err":"inner"}"#.into())
        );
        assert_eq!(
            f.outcome(&[Val::Result(Err(None))]),
            Outcome::Err("the function returned an error".into())
        );
        assert_eq!(
            f.outcome(&[Val::Result(Ok(None))]),
            Outcome::Ok(String::new())
        );
        assert_eq!(f.outcome(&[Val::U32(4)]), Outcome::Ok("4".into()));
        assert_eq!(
            f.outcome(&[Val::String("plain".into())]),
            Outcome::Ok("plain".into())
        );
        assert!(matches!(f.outcome(&[]), Outcome::Ok(t) if t.starts_with("done")));
        let err_record = Val::Result(Err(Some(Box::new(Val::Record(vec![(
            "code".into(),
            Val::U8(2),
        )])))));
        assert_eq!(
            f.outcome(&[err_record]),
            Outcome::Err(r#"{"code":2}"#.into())
        );
    }

    #[test]
    fn a_record_answer_is_structured_output_with_its_schema() -> Res {
        let point = Ty::Record(vec![("x".into(), Ty::S32), ("y".into(), Ty::S32)]);
        let value = Val::Record(vec![("x".into(), Val::S32(1)), ("y".into(), Val::S32(-2))]);
        let plain = func(vec![], Some(point.clone()));
        assert_eq!(plain.output_schema(), Some(schema(&point)));
        assert_eq!(
            plain.structured(std::slice::from_ref(&value)),
            Some(json!({"x": 1, "y": -2}))
        );
        let fallible = func(
            vec![],
            Some(Ty::Result {
                ok: Some(b(point.clone())),
                err: Some(b(Ty::String)),
            }),
        );
        assert_eq!(fallible.output_schema(), Some(schema(&point)));
        assert_eq!(
            fallible.structured(&[Val::Result(Ok(Some(Box::new(value))))]),
            Some(json!({"x": 1, "y": -2}))
        );
        assert_eq!(
            fallible.structured(&[Val::Result(Err(Some(Box::new(Val::String("no".into())))))]),
            None
        );
        // Anything but a record answers text only.
        for t in [Ty::String, Ty::List(b(Ty::U8)), Ty::Option(b(point))] {
            let f = func(vec![], Some(t));
            assert_eq!(f.output_schema(), None);
            assert_eq!(f.structured(&[Val::String("x".into())]), None);
        }
        assert_eq!(func(vec![], None).output_schema(), None);
        Ok(())
    }

    #[test]
    fn results_and_options_as_arguments() -> Res {
        let ty = Ty::Result {
            ok: None,
            err: Some(b(Ty::String)),
        };
        assert_eq!(
            to_val(&json!({"ok": null}), &ty, "r")?,
            Val::Result(Ok(None))
        );
        assert_eq!(
            to_val(&json!({"err": "x"}), &ty, "r")?,
            Val::Result(Err(Some(Box::new(Val::String("x".into())))))
        );
        let e = to_val(&json!({"ok": 1}), &ty, "r")
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_ref()
                .is_some_and(|e| e.starts_with("argument `r.ok`: expected null")),
            "{e:?}"
        );
        let e = to_val(&json!({"ok": null, "err": "x"}), &ty, "r")
            .err()
            .map(|e| e.to_string());
        assert!(e.is_some());
        let opt = Ty::Option(b(Ty::List(b(Ty::U8))));
        assert_eq!(to_val(&json!(null), &opt, "o")?, Val::Option(None));
        assert_eq!(
            to_val(&json!([1]), &opt, "o")?,
            Val::Option(Some(Box::new(Val::List(vec![Val::U8(1)]))))
        );
        let e = to_val(&json!([1, 300]), &opt, "o")
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_ref()
                .is_some_and(|e| e.starts_with("argument `o[1]`:")),
            "{e:?}"
        );
        Ok(())
    }

    #[test]
    fn tuples_fixed_lists_and_maps_check_their_shape() -> Res {
        let t = Ty::Tuple(vec![Ty::U8, Ty::String]);
        assert!(to_val(&json!([1, "a", 2]), &t, "t").is_err());
        let e = to_val(&json!(["a", "a"]), &t, "t")
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_ref()
                .is_some_and(|e| e.starts_with("argument `t[0]`:")),
            "{e:?}"
        );
        let fl = Ty::FixedList(b(Ty::U8), 3);
        assert!(to_val(&json!([1, 2]), &fl, "f").is_err());
        let m = Ty::Map(b(Ty::String), b(Ty::U8));
        let e = to_val(&json!([["a"]]), &m, "m")
            .err()
            .map(|e| e.to_string());
        assert!(
            e.as_ref()
                .is_some_and(|e| e.starts_with("argument `m[0]`: expected a [key, value] pair")),
            "{e:?}"
        );
        let v = jsonschema::validator_for(&schema(&t))?;
        assert!(v.is_valid(&json!([1, "a"])) && !v.is_valid(&json!([1, "a", 2])));
        Ok(())
    }
}
