//! The languages cove parses, chosen by file extension, and their tree-sitter grammars.
//! Must not look at file contents: a language is a name and an extension here.

use std::path::Path;
use tree_sitter::Language;

/// A language with a grammar compiled into the host.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lang {
    Rust,
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Go,
    C,
    Cpp,
    Java,
}

/// File extensions and their languages. `.h` is C first; see [`Lang::fallback`].
pub const EXTENSIONS: &[(&str, Lang)] = &[
    ("rs", Lang::Rust),
    ("py", Lang::Python),
    ("pyi", Lang::Python),
    ("js", Lang::JavaScript),
    ("jsx", Lang::JavaScript),
    ("mjs", Lang::JavaScript),
    ("cjs", Lang::JavaScript),
    ("ts", Lang::TypeScript),
    ("mts", Lang::TypeScript),
    ("cts", Lang::TypeScript),
    ("tsx", Lang::Tsx),
    ("go", Lang::Go),
    ("c", Lang::C),
    ("h", Lang::C),
    ("cc", Lang::Cpp),
    ("cpp", Lang::Cpp),
    ("cxx", Lang::Cpp),
    ("c++", Lang::Cpp),
    ("hh", Lang::Cpp),
    ("hpp", Lang::Cpp),
    ("hxx", Lang::Cpp),
    ("h++", Lang::Cpp),
    ("java", Lang::Java),
];

/// For messages: what cove can parse.
pub const SUPPORTED: &str = "Rust, Python, JavaScript, TypeScript, Go, C, C++ and Java";

impl Lang {
    /// The language of a file, by its extension.
    pub fn from_path(path: &Path) -> Option<Lang> {
        let ext = path.extension()?.to_str()?;
        EXTENSIONS
            .iter()
            .find(|(e, _)| e.eq_ignore_ascii_case(ext))
            .map(|(_, l)| *l)
    }

    /// The name outlines report.
    pub fn name(self) -> &'static str {
        match self {
            Lang::Rust => "rust",
            Lang::Python => "python",
            Lang::JavaScript => "javascript",
            Lang::TypeScript => "typescript",
            Lang::Tsx => "tsx",
            Lang::Go => "go",
            Lang::C => "c",
            Lang::Cpp => "cpp",
            Lang::Java => "java",
        }
    }

    /// The grammar.
    pub fn grammar(self) -> Language {
        match self {
            Lang::Rust => tree_sitter_rust::LANGUAGE.into(),
            Lang::Python => tree_sitter_python::LANGUAGE.into(),
            Lang::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Lang::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Lang::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Lang::Go => tree_sitter_go::LANGUAGE.into(),
            Lang::C => tree_sitter_c::LANGUAGE.into(),
            Lang::Cpp => tree_sitter_cpp::LANGUAGE.into(),
            Lang::Java => tree_sitter_java::LANGUAGE.into(),
        }
    }

    /// The grammar to try when this one finds syntax errors: a `.h` header may well be C++.
    pub fn fallback(self) -> Option<Lang> {
        (self == Lang::C).then_some(Lang::Cpp)
    }

    /// True for the C family, whose definitions share one set of rules.
    pub fn is_c_family(self) -> bool {
        matches!(self, Lang::C | Lang::Cpp)
    }

    /// True for JavaScript and its TypeScript dialects.
    pub fn is_js_family(self) -> bool {
        matches!(self, Lang::JavaScript | Lang::TypeScript | Lang::Tsx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_grammar_loads_into_a_parser() -> Result<(), tree_sitter::LanguageError> {
        let mut parser = tree_sitter::Parser::new();
        for (_, lang) in EXTENSIONS {
            parser.set_language(&lang.grammar())?;
        }
        Ok(())
    }

    #[test]
    fn languages_come_from_extensions() {
        assert_eq!(Lang::from_path(Path::new("a/b.rs")), Some(Lang::Rust));
        assert_eq!(Lang::from_path(Path::new("x.TSX")), Some(Lang::Tsx));
        assert_eq!(Lang::from_path(Path::new("x.h")), Some(Lang::C));
        assert_eq!(Lang::from_path(Path::new("Makefile")), None);
        assert_eq!(Lang::from_path(Path::new("notes.md")), None);
    }
}
