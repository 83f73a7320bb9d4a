print("MicroBench: not yet written")
