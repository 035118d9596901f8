"""`sam2 benchmark`: our speed beside the reference's, in one process. A job: it imports the engine
library, never another job."""
