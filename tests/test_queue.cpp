// Queue, JoinableQueue, ByteQueue across processes (being written).
