"""`sam2 annotate`: detector boxes -> SAM masks -> YOLO-seg labels (local or Ray). A job: it imports
the engine library, never another job."""
