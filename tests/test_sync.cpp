// Condition, Semaphore, Event, Barrier across processes (being written).
