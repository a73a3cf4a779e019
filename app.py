"""CoCosNet v2 web demo: ``python app.py --help``.

Four tabs (mask-to-image, edge-to-face, pose-to-body, oil-portrait); the app itself lives in
:mod:`pipeline_cocosnet.app` so it can be built without launching (tests, Spaces).
"""

from pipeline_cocosnet.app import main

if __name__ == "__main__":
    main()
