"""Views, one module per area: parse input through a form, call one service or selector,
render."""
