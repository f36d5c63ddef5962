"""tigress: secure digital-credential transfer (IETF Tigress).

Layers (imports go one way only, enforced by import-linter):
``crypto`` <- ``protocol`` <- ``client``/``wallet`` <- ``verticals`` <- ``cli``;
``relay`` stands alone and never imports ``crypto`` or ``protocol``.
"""

__version__ = "0.1.0"
