"""`sam2 val`: one-click/box/click-curve mIoU on images, J&F on videos. A job: it imports the
engine library, never another job."""
