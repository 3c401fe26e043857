//! A plain component (no cove world) exporting a function for every kind of WIT type, so the
//! host's JSON conversion meets wasmtime's own type checks in both directions.

wit_bindgen::generate!({ path: "wit", world: "typed" });

use exports::acme::typed::shapes::{self, Color, Perms, Point, Shape};

struct Typed;

impl Guest for Typed {
    fn hello(name: String) -> String {
        format!("hello, {name}")
    }
}

impl shapes::Guest for Typed {
    fn describe(s: Shape, c: Color, p: Perms, label: Option<String>) -> Result<String, String> {
        let shape = match s {
            Shape::Dot => "a dot".to_string(),
            Shape::Circle(0) => return Err("a circle needs a radius".into()),
            Shape::Circle(r) => format!("a circle of radius {r}"),
            Shape::Poly(points) => {
                let at: Vec<String> = points
                    .iter()
                    .map(|p| format!("({},{})", p.x, p.y))
                    .collect();
                format!("a polygon {}", at.join(" "))
            }
        };
        let color = match c {
            Color::Red => "red",
            Color::Green => "green",
            Color::Blue => "blue",
        };
        let mut perms = Vec::new();
        for (flag, name) in [
            (Perms::READ, "read"),
            (Perms::WRITE, "write"),
            (Perms::EXEC, "exec"),
        ] {
            if p.contains(flag) {
                perms.push(name);
            }
        }
        Ok(format!(
            "{shape}, {color}, [{}], {}",
            perms.join("|"),
            label.map_or("no label".into(), |l| format!("labelled {l}"))
        ))
    }

    fn midpoint(a: Point, b: Point) -> Point {
        Point {
            x: (a.x + b.x) / 2,
            y: (a.y + b.y) / 2,
        }
    }

    fn add64(a: u64, b: u64) -> u64 {
        a.wrapping_add(b)
    }

    #[allow(clippy::type_complexity)]
    fn echo(
        pt: Point,
        pair: (char, f64),
        items: Vec<u8>,
        maybe: Option<Result<u32, String>>,
    ) -> (Point, (char, f64), Vec<u8>, Option<Result<u32, String>>) {
        (pt, pair, items, maybe)
    }

    fn fail(why: String) -> Result<(), String> {
        Err(format!("failed as asked: {why}"))
    }

    type Counter = Counter;

    fn peek(c: shapes::CounterBorrow<'_>) -> u32 {
        c.get::<Counter>().0
    }
}

struct Counter(u32);

impl shapes::GuestCounter for Counter {
    fn new(start: u32) -> Self {
        Counter(start)
    }

    fn get(&self) -> u32 {
        self.0
    }
}

// Exports carry component-model names that only a wasm linker accepts; a native build (the
// workspace's tests and clippy) type-checks the rest.
#[cfg(target_arch = "wasm32")]
export!(Typed);
#[cfg(not(target_arch = "wasm32"))]
const _: fn(String) -> String = <Typed as Guest>::hello;
