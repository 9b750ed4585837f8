//! ClientFlow Edge domain.
