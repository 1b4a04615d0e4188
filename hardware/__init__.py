"""neurosim.hardware: backends that translate a neurosim Graph into another system (NIR, Norse,
Lava/netx, the fixed-point Loihi model, Brian2). Filled by later issues."""
