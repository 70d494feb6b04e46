"""The cells' data flow: names each cell reads and writes, and the plan of steps, edges and the
variables on each edge."""
