"""Network symbols, one module per network family (as ademxapp's util/symbol/): resnet38."""
