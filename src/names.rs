//! Closed sets of names that outputs spell as strings: finding codes, states,
//! statuses. Each is an enum, so code matches variants and never strings, and each
//! serializes to (and reads back from) the stable spelling of the JSON outputs.

/// Declares an enum whose variants serialize as the given strings, with `as_str`,
/// `ALL`, `Display` and an order that is the order of the strings (so sorting by a
/// name sorts the same as sorting its JSON spelling).
macro_rules! str_enum {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident {
            $( $(#[$vmeta:meta])* $var:ident = $s:literal ),+ $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
        $vis enum $name {
            $( $(#[$vmeta])* #[serde(rename = $s)] $var ),+
        }

        impl $name {
            /// Every variant, in declaration order.
            #[allow(dead_code)]
            pub const ALL: &'static [$name] = &[$($name::$var),+];

            /// The variant spelled `s`, if any.
            #[allow(dead_code)]
            pub fn parse(s: &str) -> Option<$name> {
                $name::ALL.iter().copied().find(|v| v.as_str() == s)
            }

            /// The name as JSON outputs spell it.
            pub fn as_str(self) -> &'static str {
                match self {
                    $( $name::$var => $s ),+
                }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl PartialOrd for $name {
            fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
                Some(self.cmp(other))
            }
        }

        impl Ord for $name {
            fn cmp(&self, other: &Self) -> std::cmp::Ordering {
                self.as_str().cmp(other.as_str())
            }
        }

    };
}
