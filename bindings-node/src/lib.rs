//! placeholder, replaced by the node binding
